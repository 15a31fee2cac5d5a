#!/usr/bin/env bash
# Set up a fresh Linux (Debian) or macOS machine: system packages, .venv with the package installed
# editable (the Swift shim is built when a Swift compiler is found), and the offline Whisper weights.
# Idempotent; safe to run again. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

apt_pkgs=(libopenblas0-pthread libgomp1 libsndfile1 ffmpeg pocketsphinx-testdata espeak-ng sox)
if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null
  fi
fi

py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras="dev,convert,bench"
[ "$(uname -s)" = Linux ] && extras="cpu,$extras"
# Swift on PATH (or under /opt/swift) builds the shim; without it the package installs all the same.
[ -x /opt/swift/usr/bin/swiftc ] && export PATH="/opt/swift/usr/bin:$PATH"
.venv/bin/python -m pip install -q -e ".[$extras]"
bash scripts/fetch_models.sh tiny.en silero-vad
