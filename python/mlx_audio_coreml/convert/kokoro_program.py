"""Build Kokoro's decoder (the vocoder) as a fixed-bucket MIL program with coremltools' builder (no torch).

Inputs asr (1, 512, N), f0 (1, 2N), energy (1, 2N), style (1, 128); output audio (1, 600 N), the
whole of `kokoro.model.decoder.Decoder` with the harmonic source's noise off (what the int8 ONNX
export computes): AdaIN blocks, harmonic source (phase, sines, STFT), iSTFTNet generator, iSTFT.
A chunk of n <= N frames arrives zero-padded (vocoder_bucket.py). The package finds n itself:
the real frames are those up to the last whose asr column is not all zero (padding is exactly zero,
an aligned text frame never is). Every conv input is masked to zero past the real frames, every
instance norm counts real frames only, and the source is reflected at the real end as the MLX
STFT reflects it, so the first 600 n samples equal the MLX decoder's audio on the unpadded chunk.
Scopes (op name prefixes): "decoder", "source", "stage<i>", "tail"; `FLOAT32_SCOPES` stay float32
in a float16 package.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from coremltools.converters.mil.mil import Function, Program, Var, types
from mlx.utils import tree_flatten

from ._builder import mb
from .kokoro_ops import Namer, Ops, dims

# The float16 traps: the harmonic phase (cumulative sum, then sin) and the last stage's chained
# Snake blocks feeding exp. Names of the scopes kept in float32 by default.
FLOAT32_SCOPES = ("source", "stage1", "tail")
BuildProgress = Callable[[float], None]


def decoder_weights(decoder: Any) -> dict[str, np.ndarray]:
    """The MLX decoder's parameters in MIL layouts: convs (out, in, k), transposed convs (in, out, k)."""
    out: dict[str, np.ndarray] = {}
    for name, value in tree_flatten(decoder.parameters()):
        array = np.asarray(value, dtype=np.float32)
        if name.endswith("pool.weight"):  # depthwise transposed: MLX (C, 3, 1) -> MIL (C, 1, 3)
            array = array.transpose(0, 2, 1)
        elif name.startswith("generator.ups.") and name.endswith(".weight"):  # MLX (out, k, in) -> (in, out, k)
            array = array.transpose(2, 0, 1)
        elif ".alpha" in name:  # (1, 1, C) channels last -> (1, C, 1)
            array = array.transpose(0, 2, 1)
        elif name.endswith(".weight") and array.ndim == 3:  # conv: (out, k, in) -> (out, in, k)
            array = array.transpose(0, 2, 1)
        out[name] = np.ascontiguousarray(array)
    return out


class _Masks:
    """Validity masks (1, 1, T) and real-frame counts (1, 1, 1) per time rate, from the asr input."""

    def __init__(self, ops: Ops, asr: Var, frames: int) -> None:
        n = ops.n
        energy = mb.reduce_sum(x=mb.abs(x=asr, name=n()), axes=[1], keep_dims=True, name=n())  # (1, 1, N)
        nonzero = mb.cast(x=mb.greater(x=energy, y=0.0, name=n()), dtype="fp32", name=n())
        after = mb.cumsum(x=nonzero, axis=2, reverse=True, name=n())  # real frames at or after each frame
        self.text = mb.cast(x=mb.greater(x=after, y=0.0, name=n()), dtype="fp32", name=n())
        # n, (1, 1, 1); at least 1 so that all-zero features (a warm-up call) give silence, not NaN
        real = mb.reduce_sum(x=self.text, axes=[2], keep_dims=True, name=n())
        self.count = mb.maximum(x=real, y=1.0, name=n())
        self.ops = ops
        self.frames = frames
        self._cache: dict[int, tuple[Var, Var]] = {1: (self.text, self.count)}

    def at(self, factor: int) -> tuple[Var, Var]:
        """The mask and count at `factor` frames per text frame."""
        if factor not in self._cache:
            self._cache[factor] = (self.ops.repeat_time(self.text, factor), self.ops.mul(self.count, float(factor)))
        return self._cache[factor]

    def with_first(self, factor: int) -> tuple[Var, Var]:
        """One always-real frame in front (the generator's reflection pad and the STFT's extra frame)."""
        mask, count = self.at(factor)
        ones = self.ops.const(np.ones((1, 1, 1), np.float32))
        return self.ops.concat([ones, mask], axis=2), self.ops.add(count, 1.0)


def build_vocoder_program(decoder: Any, frames: int, on_part: BuildProgress | None = None) -> Program:
    """The MLX `Decoder` as a one-function program for a bucket of `frames` text frames."""
    weights = decoder_weights(decoder)
    dim_in, style_dim = decoder.dim_in, decoder.style_dim
    specs = {
        "asr": mb.TensorSpec(shape=(1, dim_in, frames), dtype=types.fp32),
        "f0": mb.TensorSpec(shape=(1, 2 * frames), dtype=types.fp32),
        "energy": mb.TensorSpec(shape=(1, 2 * frames), dtype=types.fp32),
        "style": mb.TensorSpec(shape=(1, style_dim), dtype=types.fp32),
    }
    namer = Namer()
    ops = Ops(weights, namer)
    with Function(specs) as function:
        asr, f0, energy, style = (function.inputs[k] for k in ("asr", "f0", "energy", "style"))
        with namer.scope("decoder"):
            masks = _Masks(ops, asr, frames)
            f0_frames = mb.expand_dims(x=f0, axes=[1], name=namer())  # (1, 1, 2N)
            x = _decoder_frames(ops, masks, asr, f0_frames, energy, style)
        if on_part is not None:
            on_part(0.4)
        from . import kokoro_generator

        with namer.scope("source"):
            har = kokoro_generator.source_spectrum(ops, decoder.generator, masks, f0_frames)
        audio = kokoro_generator.generator(ops, decoder.generator, masks, x, style, har, on_part)
        function.set_outputs([mb.identity(x=audio, name="audio")])
    program = Program()
    program.add_function("main", function)
    return program


def _decoder_frames(ops: Ops, masks: _Masks, asr: Var, f0: Var, energy: Var, style: Var) -> Var:
    """Decoder.frames: F0/energy strided convs, encode, asr_res, four decode blocks -> (1, C0, 2N)."""
    m1, _ = masks.at(1)
    m2, _ = masks.at(2)
    f0_c = ops.conv(f0, "F0_conv", m2, stride=2, pad=1)  # (1, 1, N)
    energy_3d = mb.expand_dims(x=energy, axes=[1], name=ops.n())
    n_c = ops.conv(energy_3d, "N_conv", m2, stride=2, pad=1)
    asr = ops.mul(asr, m1)
    x = _adain_resblk(ops, masks, ops.concat([asr, f0_c, n_c], axis=1), style, "encode", upsample=False)
    asr_res = ops.conv(asr, "asr_res.0", None)
    for index in range(4):
        x = ops.concat([x, asr_res, f0_c, n_c], axis=1)
        x = _adain_resblk(ops, masks, x, style, f"decode.{index}", upsample=index == 3)
    return x


def _adain_resblk(ops: Ops, masks: _Masks, x: Var, style: Var, name: str, upsample: bool) -> Var:
    """AdainResBlk1d: (AdaIN, LeakyReLU 0.2, [pool], conv3) twice plus the shortcut, / sqrt(2)."""
    m_in, c_in = masks.at(1)
    m_out, c_out = masks.at(2) if upsample else (m_in, c_in)
    h = ops.leaky(ops.adain(x, style, f"{name}.norm1", m_in, c_in), 0.2)
    if upsample:  # depthwise ConvTranspose1d(k3, s2, p1, output_padding 1): crop 1 in front only
        h = ops.conv_transpose(h, f"{name}.pool", m_in, stride=2, crop=(1, 0), groups=dims(h)[1])
    h = ops.conv(h, f"{name}.conv1", m_out, pad=1)
    h = ops.leaky(ops.adain(h, style, f"{name}.norm2", m_out, c_out), 0.2)
    h = ops.conv(h, f"{name}.conv2", m_out, pad=1)
    shortcut = ops.repeat_time(x, 2) if upsample else x
    if f"{name}.conv1x1.weight" in ops.w:
        shortcut = ops.conv(shortcut, f"{name}.conv1x1", None, bias=False)
    return ops.mul(ops.add(h, shortcut), 1.0 / math.sqrt(2.0))
