# Source me on the GPU machine's Xeon host, from the project's root, after every .gpu/xN/stash.sh has
# run (bench/xeon_cpu.bundle.sh builds them):  source bench/xeon_cpu.env.sh
# Once per machine: joins the parts in $XEON_ROOT (default /root/x), checks them, unpacks a ready
# site folder to $XSITE (default /tmp/xsite), the tiny.en weights to $XEON_ROOT/home/models and Debian's
# OpenBLAS to $XEON_ROOT/root (not /). Every time: sets PYTHONPATH (xsite, then python/), the model
# cache (MLX_AUDIO_COREML_HOME) and the libraries our package loads, then prints what it found.
# XEON_BLAS=carried uses the carried OpenBLAS even where the machine has one (to test it here).
_x="${XEON_ROOT:-/root/x}"
_xsite="${XSITE:-/tmp/xsite}"
_repo="$PWD"
_lib="$_x/root/usr/lib/x86_64-linux-gnu"

_xeon_unpack() {
  local n i
  n=$(cat "$_x/NPARTS" 2>/dev/null) || { echo "xeon env: $_x/NPARTS missing: run the last stash.sh" >&2; return 1; }
  for i in $(seq 0 $((n - 1))); do
    [ -f "$_x/part.$i" ] || { echo "xeon env: $_x/part.$i missing: run .gpu/x$((i + 1))/stash.sh" >&2; return 1; }
  done
  (
    cd "$_x" || exit 1
    cat $(for i in $(seq 0 $((n - 1))); do echo "part.$i"; done) > blob.tar
    sha256sum -c --quiet SHA256 || { echo "xeon env: checksum mismatch" >&2; exit 1; }
    tar -xf blob.tar && rm -f blob.tar part.*
    rm -rf "$_xsite" && mkdir -p "$_xsite" home/models root
    tar -xJf xsite.tar.xz --strip-components=1 -C "$_xsite"
    tar -xJf tiny.en.tar.xz -C home/models
    for deb in deb/*.deb; do dpkg -x "$deb" root || echo "xeon env: could not unpack $deb" >&2; done
    rm -f xsite.tar.xz tiny.en.tar.xz
  ) || return 1
  touch "$_x/ready"
}

if [ ! -f "$_x/ready" ] || [ ! -d "$_xsite/mlx" ]; then
  _xeon_unpack || return 1 2>/dev/null || exit 1
fi
# longform_cpu.py reads the LibriVox clips where Debian's pocketsphinx-testdata puts them
_rivox=/usr/share/pocketsphinx/test/data/librivox
if [ ! -f "$_rivox/transcription" ] && [ -d "$_x/librivox" ]; then
  mkdir -p "$(dirname "$_rivox")" && cp -r "$_x/librivox" "$_rivox" || echo "xeon env: could not place $_rivox" >&2
fi

export PYTHONPATH="$_xsite:$_repo/python${XEON_EXTRA_PATH:+:$XEON_EXTRA_PATH}"
export MLX_AUDIO_COREML_HOME="$_x/home" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export MLX_AUDIO_COREML_ONEDNN="$_xsite/lib/libdnnl.so.3"
_sys_blas=/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
if [ "${XEON_BLAS:-}" = carried ] || [ ! -f "$_sys_blas" ]; then
  export MLX_AUDIO_COREML_BLAS="$_lib/openblas-pthread/libblas.so.3"
fi
# the carried OpenBLAS needs libgfortran.so.5 (and oneDNN libgomp.so.1): add ours only where missing
if ! ldconfig -p 2>/dev/null | grep -q 'libgfortran.so.5 ' || ! ldconfig -p 2>/dev/null | grep -q 'libgomp.so.1 '; then
  export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$_lib"
fi
cp "$_repo/bench/xeon_cpu.env.sh" "$_x/env.sh" 2>/dev/null || true
python3 - <<'EOS'
import mlx_audio_coreml  # noqa: F401  (first: it preloads OpenBLAS for MLX)
import mlx.core as mx
from mlx_audio_coreml.cpu import blas, onednn
print(f"xeon env: mlx {mx.__version__} {mx.default_device()} from {mx.__file__}")
print(f"xeon env: BLAS for MLX: {blas.blas_note}; oneDNN: {onednn.version() or 'not loaded'}")
for name in ("ctranslate2", "faster_whisper", "soundfile", "av"):
    try:
        module = __import__(name)
        print(f"xeon env: {name} {getattr(module, '__version__', '?')}")
    except Exception as exc:  # a missing engine is reported, the benches then say so in their rows
        print(f"xeon env: {name} missing: {exc!r}")
EOS
