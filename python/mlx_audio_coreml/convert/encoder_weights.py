"""The Whisper encoder's weights as plain float32 numpy arrays, read from the MLX encoder module.

The MIL builder takes these rather than the MLX module so that it depends on nothing but numpy and
coremltools, and so that a wrong or missing parameter is reported here, once, by name.
Linear weights keep PyTorch's (out, in) order; conv weights are (out, in, kernel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, overload

import numpy as np

from ..errors import UnsupportedModelForConversion


@dataclass(frozen=True)
class Linear:
    weight: np.ndarray  # (out, in)
    bias: np.ndarray | None  # (out,)


@dataclass(frozen=True)
class Norm:
    weight: np.ndarray  # (D,)
    bias: np.ndarray  # (D,)


@dataclass(frozen=True)
class BlockWeights:
    attn_ln: Norm
    query: Linear
    key: Linear  # Whisper's key projection has no bias
    value: Linear
    out: Linear
    mlp_ln: Norm
    mlp1: Linear  # (4D, D)
    mlp2: Linear  # (D, 4D)


@dataclass(frozen=True)
class EncoderWeights:
    n_head: int
    conv1: Linear  # weight (D, n_mels, 3)
    conv2: Linear  # weight (D, D, 3), stride 2
    positions: np.ndarray  # (n_ctx, D) sinusoids
    blocks: tuple[BlockWeights, ...]
    ln_post: Norm

    @property
    def n_mels(self) -> int:
        return int(self.conv1.weight.shape[1])

    @property
    def d_model(self) -> int:
        return int(self.conv1.weight.shape[0])

    @property
    def n_ctx(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_layer(self) -> int:
        return len(self.blocks)


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """Whisper's fixed encoder positions: (length, channels), sines then cosines."""
    increment = math.log(max_timescale) / (channels // 2 - 1)
    inv_timescales = np.exp(-increment * np.arange(channels // 2))
    scaled_time = np.arange(length)[:, None] * inv_timescales[None, :]  # (length, channels/2)
    return np.concatenate([np.sin(scaled_time), np.cos(scaled_time)], axis=1).astype(np.float32)


def weights_from_mlx(encoder: Any, n_head: int, model_name: str = "model") -> EncoderWeights:
    """Read an MLX `WhisperEncoder` (mlx_whisper's parameter names) into EncoderWeights.

    MLX stores conv weights channels-last (out, kernel, in); they are turned to (out, in, kernel).
    """
    from mlx.utils import tree_flatten

    flat = {name: _to_numpy(value) for name, value in tree_flatten(encoder.parameters())}
    reader = _Reader(flat, model_name)
    conv1 = Linear(reader.take("conv1.weight").transpose(0, 2, 1), reader.take("conv1.bias"))
    conv2 = Linear(reader.take("conv2.weight").transpose(0, 2, 1), reader.take("conv2.bias"))
    n_layer = len({name.split(".")[1] for name in flat if name.startswith("blocks.")})
    blocks = tuple(_block(reader, f"blocks.{i}") for i in range(n_layer))
    ln_post = Norm(reader.take("ln_post.weight"), reader.take("ln_post.bias"))
    reader.check_all_used()
    positions = _positions(encoder, conv1.weight.shape[0])
    weights = EncoderWeights(n_head, conv1, conv2, positions, blocks, ln_post)
    check_supported(weights, model_name)
    return weights


def check_supported(weights: EncoderWeights, model_name: str) -> None:
    """UnsupportedModelForConversion when the weights are not a Whisper encoder we can build."""
    d_model = weights.d_model
    if weights.conv1.weight.shape[2] != 3 or weights.conv2.weight.shape != (d_model, d_model, 3):
        raise UnsupportedModelForConversion(model_name, "the front end is not two kernel-3 convs")
    if weights.n_head <= 0 or d_model % weights.n_head:
        raise UnsupportedModelForConversion(model_name, f"d_model {d_model} is not divisible by {weights.n_head} heads")
    if weights.positions.shape != (weights.n_ctx, d_model):
        raise UnsupportedModelForConversion(model_name, f"positions have shape {weights.positions.shape}")
    if weights.n_layer == 0:
        raise UnsupportedModelForConversion(model_name, "the encoder has no attention blocks")


class _Reader:
    """Hands out parameters by name and remembers which were used, to name the leftovers."""

    def __init__(self, flat: Mapping[str, np.ndarray], model_name: str) -> None:
        self.flat = flat
        self.used: set[str] = set()
        self.model_name = model_name

    @overload
    def take(self, name: str, required: Literal[True] = True) -> np.ndarray: ...
    @overload
    def take(self, name: str, required: bool) -> np.ndarray | None: ...
    def take(self, name: str, required: bool = True) -> np.ndarray | None:
        if name not in self.flat:
            if required:
                raise UnsupportedModelForConversion(self.model_name, f"the encoder has no parameter '{name}'")
            return None
        self.used.add(name)
        return self.flat[name]

    def check_all_used(self) -> None:
        left = sorted(set(self.flat) - self.used)
        if left:
            raise UnsupportedModelForConversion(self.model_name, f"unexpected encoder parameters {left}")


def _block(reader: _Reader, prefix: str) -> BlockWeights:
    def linear(name: str, bias: bool = True) -> Linear:
        return Linear(reader.take(f"{prefix}.{name}.weight"), reader.take(f"{prefix}.{name}.bias", required=bias))

    def norm(name: str) -> Norm:
        return Norm(reader.take(f"{prefix}.{name}.weight"), reader.take(f"{prefix}.{name}.bias"))

    return BlockWeights(
        attn_ln=norm("attn_ln"),
        query=linear("attn.query"),
        key=linear("attn.key", bias=False),
        value=linear("attn.value"),
        out=linear("attn.out"),
        mlp_ln=norm("mlp_ln"),
        mlp1=linear("mlp1"),
        mlp2=linear("mlp2"),
    )


def _positions(encoder: Any, d_model: int) -> np.ndarray:
    """The encoder's own position table when it keeps one, else Whisper's sinusoids."""
    for attribute in ("_positional_embedding", "positional_embedding"):
        table = getattr(encoder, attribute, None)
        if table is not None:
            return _to_numpy(table)
    n_ctx = getattr(encoder, "n_ctx", 1500)
    return sinusoids(int(n_ctx), d_model)


def _to_numpy(value: Any) -> np.ndarray:
    """float32 numpy copy of an MLX (or numpy) array; MLX's bfloat16 has no numpy twin, so upcast first."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float32)
    import mlx.core as mx

    return np.array(value.astype(mx.float32), copy=True)
