"""Accuracy cost of the int8 / int4 quantization option on real speech.

For each model (tiny.en, base) and each clip (jfk.wav and the LibriVox clips of Debian's
pocketsphinx-testdata), greedy-decodes the first 30 s window with the float32 model and with its
int8 and int4 versions, and prints word error rates against the reference transcripts and the
token agreement with float32 (1 - token edit distance / float32 length).

Rows int8 / int4 are MLX's group quantization (what runs on a GPU). MLX's quantized matmul has
no fast CPU kernel (an int8 encoder is ~20x slower than float32 here), so they are simulated: every layer `nn.quantize` would quantize gets
the weights `dequantize(quantize(W))`, the exact values the quantized kernels multiply by. One
clip per model is also decoded with the real quantized model, and the tokens are compared.
Row "int8 cpu" is the CPU's int8 with oneDNN (per-row weight and input scales, as CTranslate2),
decoded for real on every clip.

    .venv/bin/python bench/quantization_accuracy.py [--models tiny.en,base] [--real]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before MLX)
from mlx_audio_coreml.whisper.audio import N_FRAMES, N_SAMPLES, load_audio
from mlx_audio_coreml.whisper.loading import load_whisper
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram
from mlx_audio_coreml.whisper.model_names import resolve_local
from mlx_audio_coreml.whisper.quantize import QuantizationSpec

import mlx.core as mx  # isort: skip
import mlx.nn as nn  # isort: skip
from mlx.utils import tree_flatten, tree_unflatten  # isort: skip

REPO = Path(__file__).resolve().parents[1]
JFK_TEXT = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def clips() -> list[tuple[Path, str]]:
    found = [(REPO / "samples" / "jfk.wav", JFK_TEXT)]
    listing = LIBRIVOX / "transcription"
    for line in listing.read_text().splitlines() if listing.is_file() else []:
        match = re.fullmatch(r"<s> (.*) </s> \((\S+)\)", line.strip())
        if match:
            found.append((LIBRIVOX / f"{match.group(2)}.wav", match.group(1)))
    return found


def normalize(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def edit_distance(a: list, b: list) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def fake_quantize(model: nn.Module, spec: QuantizationSpec) -> None:
    """Give every Linear / Embedding that nn.quantize would take the weights it would multiply by."""
    updates = []
    for path, module in tree_flatten(model.leaf_modules(), is_leaf=nn.Module.is_module):
        if isinstance(module, (nn.Linear, nn.Embedding)) and module.weight.shape[-1] % spec.group_size == 0:
            packed = mx.quantize(module.weight, group_size=spec.group_size, bits=spec.bits)
            updates.append((f"{path}.weight", mx.dequantize(*packed, group_size=spec.group_size, bits=spec.bits)))
    model.update(tree_unflatten(updates))


def greedy(model: nn.Module, mel: mx.array, prompt: list[int], eot: int) -> list[int]:
    features = model.encoder(mel[None])
    logits, cache, _ = model.decoder(mx.array([prompt]), features)
    tokens: list[int] = []
    while len(tokens) < 200:
        token = int(mx.argmax(logits[0, -1]).item())
        if token == eot:
            break
        tokens.append(token)
        logits, cache, _ = model.decoder(mx.array([[token]]), features, cache)
    return tokens


def evaluate(name: str, real: bool) -> None:
    folder = resolve_local(name)
    reference = load_whisper(folder, dtype=mx.float32)
    tokenizer = reference.get_tokenizer(language="en") if reference.model.is_multilingual else reference.tokenizer
    prompt = list(tokenizer.sot_sequence_including_notimestamps)
    mels = [
        (path, text, log_mel_spectrogram(load_audio(path), reference.dims.n_mels, N_SAMPLES)[:, :N_FRAMES].T)
        for path, text in clips()
    ]
    base_tokens = [greedy(reference.model, mel, prompt, tokenizer.eot) for _, _, mel in mels]
    rows = [("float32", base_tokens)]
    for bits in (8, 4):
        spec = QuantizationSpec(bits)
        model = load_whisper(folder, dtype=mx.float32).model
        fake_quantize(model, spec)
        tokens = [greedy(model, mel, prompt, tokenizer.eot) for _, _, mel in mels]
        rows.append((f"int{bits}", tokens))
        if real:  # the real quantized kernels on the first clip must give the same tokens
            quantized = load_whisper(folder, dtype=mx.float32, quantization=spec).model
            same = greedy(quantized, mels[0][2], prompt, tokenizer.eot) == tokens[0]
            print(f"{name} int{bits}: real quantized model on {mels[0][0].name} gives the simulated tokens: {same}")
    host = load_whisper(folder, dtype=mx.float32, quantization="int8").model
    if getattr(host, "host_int8", False):  # the CPU's int8: real oneDNN kernels, every clip
        rows.append(("int8 cpu", [greedy(host, mel, prompt, tokenizer.eot) for _, _, mel in mels]))
    print(f"\n{name}: {len(mels)} clips, greedy, first 30 s window")
    print(f"{'weights':<9} {'WER':>7} {'token agreement vs float32':>28}")
    for label, tokens in rows:
        errors = sum(
            edit_distance(normalize(tokenizer.decode(t)), normalize(text)) for t, (_, text, _) in zip(tokens, mels)
        )
        words = sum(len(normalize(text)) for _, text, _ in mels)
        agreement = 1 - sum(edit_distance(t, b) for t, b in zip(tokens, base_tokens)) / sum(len(b) for b in base_tokens)
        print(f"{label:<9} {errors / words:>7.1%} {agreement:>28.1%}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny.en,base")
    parser.add_argument(
        "--real", action="store_true", help="also run the real quantized kernels on one clip (slow on CPU)"
    )
    args = parser.parse_args()
    for name in args.models.split(","):
        evaluate(name, args.real)


if __name__ == "__main__":
    main()
