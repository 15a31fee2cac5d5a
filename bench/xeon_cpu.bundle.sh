#!/usr/bin/env bash
# Build the git-ignored bundle that bench/xeon_cpu.sh needs on the GPU machine's Intel Xeon host CPU
# (offline, Python 3.12 at python3, numpy/tokenizers/huggingface_hub/onnxruntime/tqdm already there).
# Run here, from the project's root:  bash bench/xeon_cpu.bundle.sh
#
# What travels (one blob, split over .gpu/x1 .. .gpu/xN, each under PART_MIB):
#   xsite.tar.xz    a ready /tmp/xsite: mlx + mlx-cpu (what `pip install` gives a Linux Xeon user; the
#                   machine's own MLX bundle .gpu/a-b is the CUDA build), onednn-cpu-gomp's libdnnl.so.3
#                   (in lib/), soundfile, cffi, pycparser, soxr, faster-whisper, ctranslate2, av; installed
#                   here by pip for Python 3.12 (pip --target drops the oneDNN wheel's data files, so its
#                   library is copied in by hand) and xz-compressed: half the size of the wheels
#   tiny.en.tar.xz  the CTranslate2-format weights both engines load (models/tiny.en)
#   deb/            Debian's OpenBLAS (pthread) and its runtime libraries, for MLX's float32 products
#                   when the machine has no OpenBLAS of its own (scripts/setup.sh installs the same)
#   librivox/       the real speech bench/longform_cpu.py builds its long file from (0.8 MB)
# Each folder has stash.sh (copies it to $XEON_ROOT, default /root/x); the last also has env.sh
# (source it: joins, checks, unpacks once, sets PYTHONPATH and the model cache).
set -euo pipefail
PY312="${PY312:-/root/.pyenv/versions/3.12.1/bin/python3}"   # any CPython 3.12 here, to install the wheels
STAGE="${STAGE:-/tmp/xeon_bundle}"                            # kept between runs: finished steps are skipped
PART_MIB="${PART_MIB:-50}"
MODEL_DIR="${MODEL_DIR:-$HOME/.cache/mlx-audio-coreml/models/tiny.en}"
LIBRIVOX="${LIBRIVOX:-/usr/share/pocketsphinx/test/data/librivox}"
WHEELS=(mlx==0.32.4 mlx-cpu==0.32.4 onednn-cpu-gomp==2023.2.0 soundfile==0.14.0 cffi==2.1.1 pycparser==3.12
        soxr==1.1.0 faster-whisper==1.2.1 ctranslate2==4.8.5 av==18.1.0)
DEBS=(libopenblas0-pthread libgfortran5 libquadmath0 libgomp1)

grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
mkdir -p "$STAGE/dl" "$STAGE/blob/deb"

if [ ! -s "$STAGE/blob/xsite.tar.xz" ]; then
  plat=()
  for p in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    plat+=(--platform "${p}_x86_64")
  done
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${plat[@]}" --platform any -d "$STAGE/dl" "${WHEELS[@]}"
  rm -rf "$STAGE/xsite"
  "$PY312" -m pip install -q --no-index --no-deps --no-compile --target "$STAGE/xsite" "$STAGE"/dl/*.whl
  rm -rf "$STAGE/xsite/bin"   # console scripts with this machine's interpreter path
  mkdir -p "$STAGE/xsite/lib"
  unzip -p "$STAGE"/dl/onednn_cpu_gomp-*.whl '*/data/lib/libdnnl.so.3' > "$STAGE/xsite/lib/libdnnl.so.3"
  tar -cf - -C "$STAGE" xsite | xz -T2 -6 > "$STAGE/blob/xsite.tar.xz.tmp"
  mv "$STAGE/blob/xsite.tar.xz.tmp" "$STAGE/blob/xsite.tar.xz"
fi
if [ ! -s "$STAGE/blob/tiny.en.tar.xz" ]; then
  tar -cf - -C "$(dirname "$MODEL_DIR")" "$(basename "$MODEL_DIR")" | xz -T2 -6 > "$STAGE/blob/tiny.en.tar.xz.tmp"
  mv "$STAGE/blob/tiny.en.tar.xz.tmp" "$STAGE/blob/tiny.en.tar.xz"
fi
if ! ls "$STAGE"/blob/deb/libopenblas0-pthread_*.deb >/dev/null 2>&1; then
  (cd "$STAGE/blob/deb" && apt-get download "${DEBS[@]}")
fi
rm -rf "$STAGE/blob/librivox" && cp -r "$LIBRIVOX" "$STAGE/blob/librivox"

# one uncompressed tar of the parts, split evenly
tar -cf "$STAGE/blob.tar" -C "$STAGE/blob" xsite.tar.xz tiny.en.tar.xz deb librivox
size=$(stat -c %s "$STAGE/blob.tar")
parts=$(( (size + PART_MIB * 1048576 - 1) / (PART_MIB * 1048576) ))
rm -rf .gpu/x[0-9]* "$STAGE"/part.*
split -n "$parts" -d -a 1 "$STAGE/blob.tar" "$STAGE/part."
(cd "$STAGE" && sha256sum blob.tar > SHA256)
for i in $(seq 1 "$parts"); do
  d=".gpu/x$i"
  mkdir -p "$d"
  mv "$STAGE/part.$((i - 1))" "$d/"
  cat > "$d/stash.sh" <<'EOS'
# bash .gpu/xN/stash.sh: copy this folder to $XEON_ROOT (default /root/x), which outlives the call
x="${XEON_ROOT:-/root/x}"; mkdir -p "$x" && cp "$(dirname "$0")"/* "$x"/ && echo "stashed in $x: $(ls "$x" | tr '\n' ' ')"
EOS
done
last=".gpu/x$parts"
echo "$parts" > "$last/NPARTS"
cp "$STAGE/SHA256" "$last/"
cp bench/xeon_cpu.env.sh "$last/env.sh"
rm -f "$STAGE/blob.tar"
du -sh .gpu/x[0-9]*
