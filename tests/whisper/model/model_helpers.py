"""Helpers for the model tests: tiny random Whisper models, a synthetic tokenizer, a CTranslate2 writer.

`write_ct2_folder` lays a model out the way CTranslate2's Whisper converter does (see
../../python/mlx_audio_coreml/whisper/weights/ctranslate2.py for the facts), so the CTranslate2
reader can be tested without the real weights; the real tiny.en weights check it against the
publisher's own files in test_model_weights.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip
from mlx.utils import tree_flatten, tree_unflatten  # isort: skip

from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper, sinusoids  # isort: skip
from mlx_audio_coreml.whisper.weights.ct2_binary import write_model_bin  # isort: skip
from speech_data import JFK, JFK_TEXT, LIBRIVOX, REPO, librivox_clips, real_model_dir  # noqa: F401  # isort: skip


def tiny_dims(**overrides: int) -> ModelDimensions:
    values = dict(
        n_mels=80, n_audio_ctx=16, n_audio_state=32, n_audio_head=4, n_audio_layer=2,
        n_vocab=300, n_text_ctx=24, n_text_state=32, n_text_head=4, n_text_layer=2,
    )  # fmt: skip
    values.update(overrides)
    return ModelDimensions(**values)


def random_model(dims: ModelDimensions, seed: int = 0, dtype: mx.Dtype = mx.float32) -> Whisper:
    """A Whisper whose every parameter is random (layer norms near 1), so no mapping error hides."""
    model = Whisper(dims, mx.float32)
    rng = np.random.default_rng(seed)
    params = {}
    for name, value in tree_flatten(model.parameters()):
        noise = rng.standard_normal(value.shape).astype(np.float32)
        if name.endswith("ln.weight") or "_ln." in name and name.endswith(".weight") or name.endswith("ln_post.weight"):
            params[name] = mx.array(1.0 + 0.1 * noise)
        else:
            params[name] = mx.array(noise * (0.3 / np.sqrt(value.shape[-1])) if value.ndim > 1 else noise * 0.1)
    model.update(tree_unflatten(list(params.items())))
    model.set_dtype(dtype)
    model.encoder._positional_embedding = model.encoder._positional_embedding.astype(dtype)
    mx.eval(model.parameters())
    return model


def random_mel(dims: ModelDimensions, batch: int = 1, seed: int = 1) -> mx.array:
    """(B, frames, mels), channels-last as the encoder module takes it."""
    rng = np.random.default_rng(seed)
    return mx.array(rng.standard_normal((batch, 2 * dims.n_audio_ctx, dims.n_mels)).astype(np.float32))


def write_tokenizer_json(path: Path, multilingual: bool = False) -> Path:
    """A byte-level BPE tokenizer.json with Whisper's special tokens (ids right after the 256 bytes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {symbol: i for i, symbol in enumerate(sorted(alphabet))}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    languages = ["en", "zh", "de"] if multilingual else ["en"]
    specials = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{c}|>" for c in languages], "<|translate|>",
                "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]  # fmt: skip
    tokenizer.add_special_tokens(specials)
    tokenizer.save(str(path))
    return path


def write_ct2_folder(model: Whisper, folder: Path, config: dict | None = None) -> Path:
    """`model` as CTranslate2's Whisper converter writes it: model.bin (float16) + config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    ours = {name: np.array(value.astype(mx.float32)) for name, value in tree_flatten(model.parameters())}
    variables = {}
    for stack in ("encoder", "decoder"):
        variables.update(_ct2_layers(ours, stack, len(getattr(model, stack).blocks)))
    dims = model.dims
    variables.update({
        "encoder/conv1/weight": ours["encoder.conv1.weight"].transpose(0, 2, 1),
        "encoder/conv1/bias": ours["encoder.conv1.bias"],
        "encoder/conv2/weight": ours["encoder.conv2.weight"].transpose(0, 2, 1),
        "encoder/conv2/bias": ours["encoder.conv2.bias"],
        "encoder/position_encodings/encodings": np.array(sinusoids(dims.n_audio_ctx, dims.n_audio_state)),
        "encoder/layer_norm/gamma": ours["encoder.ln_post.weight"], "encoder/layer_norm/beta": ours["encoder.ln_post.bias"],
        "encoder/num_heads": np.array(dims.n_audio_head, np.int16),
        "decoder/embeddings/weight": ours["decoder.token_embedding.weight"],
        "decoder/position_encodings/encodings": ours["decoder.positional_embedding"],
        "decoder/layer_norm/gamma": ours["decoder.ln.weight"], "decoder/layer_norm/beta": ours["decoder.ln.bias"],
        "decoder/num_heads": np.array(dims.n_text_head, np.int16),
        "decoder/activation": np.array(1, np.int8), "decoder/pre_norm": np.array(1, np.int8),
    })  # fmt: skip
    variables = {k: (v.astype(np.float16) if v.dtype == np.float32 else v) for k, v in sorted(variables.items())}
    write_model_bin(
        folder / "model.bin", "WhisperSpec", 3, variables, {"decoder/projection/weight": "decoder/embeddings/weight"}
    )
    heads = np.array(model.alignment_heads).tolist()
    (folder / "config.json").write_text(json.dumps({"alignment_heads": heads, **(config or {})}))
    return folder


def _ct2_layers(ours: dict[str, np.ndarray], stack: str, count: int) -> dict[str, np.ndarray]:
    out = {}
    for i in range(count):
        src, dst = f"{stack}.blocks.{i}.", f"{stack}/layer_{i}/"
        attn = src + "attn."
        zero_bias = np.zeros_like(ours[attn + "query.bias"])
        out[dst + "self_attention/linear_0/weight"] = np.concatenate(
            [ours[attn + n + ".weight"] for n in ("query", "key", "value")]
        )
        out[dst + "self_attention/linear_0/bias"] = np.concatenate(
            [ours[attn + "query.bias"], zero_bias, ours[attn + "value.bias"]]
        )
        out.update(_pair(ours, src + "attn.out", dst + "self_attention/linear_1"))
        out.update(_norm(ours, src + "attn_ln", dst + "self_attention/layer_norm"))
        out.update(_pair(ours, src + "mlp1", dst + "ffn/linear_0"))
        out.update(_pair(ours, src + "mlp2", dst + "ffn/linear_1"))
        out.update(_norm(ours, src + "mlp_ln", dst + "ffn/layer_norm"))
        if stack == "decoder":
            cross = src + "cross_attn."
            out.update(_pair(ours, cross + "query", dst + "attention/linear_0"))
            out[dst + "attention/linear_1/weight"] = np.concatenate(
                [ours[cross + "key.weight"], ours[cross + "value.weight"]]
            )
            out[dst + "attention/linear_1/bias"] = np.concatenate(
                [np.zeros_like(ours[cross + "value.bias"]), ours[cross + "value.bias"]]
            )
            out.update(_pair(ours, cross + "out", dst + "attention/linear_2"))
            out.update(_norm(ours, src + "cross_attn_ln", dst + "attention/layer_norm"))
    return out


def _pair(ours: dict[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    return {dst + "/weight": ours[src + ".weight"], dst + "/bias": ours[src + ".bias"]}


def _norm(ours: dict[str, np.ndarray], src: str, dst: str) -> dict[str, np.ndarray]:
    return {dst + "/gamma": ours[src + ".weight"], dst + "/beta": ours[src + ".bias"]}


def greedy_tokens(
    model: Whisper, mel_frames_by_mels: mx.array, prompt: list[int], eot: int, max_tokens: int = 200
) -> list[int]:
    """Plain argmax decoding with the KV cache (no suppression), for parity with CTranslate2."""
    features = model.encoder(mel_frames_by_mels[None])
    logits, cache, _ = model.decoder(mx.array([prompt]), features)
    out: list[int] = []
    for _ in range(max_tokens):
        token = int(mx.argmax(logits[0, -1]).item())
        if token == eot:
            break
        out.append(token)
        logits, cache, _ = model.decoder(mx.array([[token]]), features, cache)
    return out


def beams_after_prefill(model: Whisper, beams: int) -> tuple[mx.array, mx.array, list]:
    """(tokens (beams, 1), audio features repeated per beam, cache): a one-row prefill of [1, 2, 3]
    on random audio, its self-attention cache repeated for `beams` rows (their audio shared), as
    beam search steps from it."""
    from mlx_audio_coreml.whisper.sampling import repeat_rows

    features = model.encoder(random_mel(model.dims))
    _, cache, _ = model.decoder(mx.array([[1, 2, 3]], dtype=mx.int32), features)
    tokens = mx.array([[4 + row] for row in range(beams)], dtype=mx.int32)
    shared = [(repeat_rows(self_kv, beams), cross) for self_kv, cross in cache]
    return tokens, mx.repeat(features, beams, axis=0), shared
