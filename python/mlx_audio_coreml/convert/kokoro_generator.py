"""MIL form of the iSTFTNet generator: harmonic source and its STFT, upsampling stages, iSTFT tail.

Mirrors `kokoro.model.source` (phase in cycles modulo 1 per frame, linearly interpolated to samples;
noise off), `kokoro.model.generator` and `kokoro.model.stft`: the STFT's framing is a stride-5 conv
with the windowed DFT basis, the iSTFT's overlap-add a stride-5 transposed conv with the windowed
inverse basis. Masks come from kokoro_program._Masks; op scopes name the float16-sensitive parts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from coremltools.converters.mil.mil import Var

from ..kokoro.model.source import _interpolation_weights
from ..kokoro.model.stft import BRANCH_CUT, SILENT_BIN
from ._builder import mb
from .kokoro_ops import Ops, atan2, dims

_STAGE_SLOPE = 0.1
_POST_SLOPE = 0.01


def source_spectrum(ops: Ops, generator: Any, masks: Any, f0: Var) -> Var:
    """f0 (1, 1, 2N) -> [magnitude | phase] of the harmonic source's STFT, (1, 2 bins, 600N / hop + 1), masked."""
    sine_gen = generator.m_source.l_sin_gen
    up, harmonics, rate = sine_gen.upsample_scale, sine_gen.dim, sine_gen.sample_rate
    n = ops.n
    frames = dims(f0)[2]
    f0_t = mb.transpose(x=f0, perm=[0, 2, 1], name=n())  # (1, L, 1)
    multiples = np.arange(1, harmonics + 1, dtype=np.float32)[None, None, :] / rate
    step = mb.mod(x=ops.mul(f0_t, multiples), y=1.0, name=n())  # (1, L, H) cycles per sample
    per_frame = ops.mul(step, float(up))
    at_frame = mb.mod(x=mb.cumsum(x=mb.mod(x=per_frame, y=1.0, name=n()), axis=1, name=n()), y=1.0, name=n())
    zeros = ops.const(np.zeros((1, 1, harmonics), np.float32))
    base_prev = ops.concat([ops.slice_axis(at_frame, 1, 0, 1), ops.slice_axis(at_frame, 1, 0, frames - 1)], 1)
    rise_prev = ops.concat([zeros, ops.slice_axis(per_frame, 1, 1, frames)], 1)
    rise_next = ops.concat([ops.slice_axis(per_frame, 1, 1, frames), zeros], 1)
    from_previous, weight = _interpolation_weights(up)
    prev = from_previous.astype(np.float32)[None, None, :, None]  # (1, 1, up, 1)

    def blend(a: Var, b: Var) -> Var:  # a where the sample interpolates from the previous frame, else b
        a4, b4 = (mb.expand_dims(x=v, axes=[2], name=n()) for v in (a, b))
        return ops.add(ops.mul(a4, prev), ops.mul(b4, (1.0 - prev).astype(np.float32)))

    base, rise = blend(base_prev, at_frame), blend(rise_prev, rise_next)
    phase = mb.mod(x=ops.add(base, ops.mul(rise, weight[None, None, :, None])), y=1.0, name=n())  # (1, L, up, H)
    sines = ops.mul(mb.sin(x=ops.mul(phase, 2.0 * math.pi), name=n()), sine_gen.sine_amp)
    voiced = mb.cast(x=mb.greater(x=f0_t, y=float(sine_gen.voiced_threshold), name=n()), dtype="fp32", name=n())
    sines = ops.mul(sines, mb.expand_dims(x=voiced, axes=[2], name=n()))
    sines = mb.reshape(x=sines, shape=[1, frames * up, harmonics], name=n())
    lin = generator.m_source.l_linear
    merged = mb.linear(x=sines, weight=np.asarray(lin.weight), bias=np.asarray(lin.bias), name=n())
    source = mb.reshape(x=mb.tanh(x=merged, name=n()), shape=[1, frames * up], name=n())
    return _stft(ops, generator.stft, masks, source, frames * up, up * 2 // generator.stft.hop)


def _stft(ops: Ops, stft: Any, masks: Any, source: Var, samples: int, factor: int) -> Var:
    """The source's STFT with reflect padding at both ends of the *real* samples (600 n of them)."""
    n = ops.n
    pad = stft.n_fft // 2
    _, count = masks.at(1)  # real text frames, (1, 1, 1)
    real = mb.reshape(x=ops.mul(count, float(samples // masks.frames)), shape=[1], name=n())
    # Padded position q reads sample p = |q - pad|, reflected at the real end: 2 (real - 1) - p.
    p = np.abs(np.arange(samples + 2 * pad, dtype=np.float32) - pad)
    inside = mb.less(x=p, y=real, name=n())
    reflected = ops.sub(ops.mul(ops.sub(real, 1.0), 2.0), p)
    index = mb.select(cond=inside, a=p, b=reflected, name=n())
    index = mb.clip(x=index, alpha=0.0, beta=float(samples - 1), name=n())
    index = mb.cast(x=index, dtype="int32", name=n())
    padded = mb.gather(x=source, indices=index, axis=1, name=n())  # (1, samples + 2 pad)
    padded = mb.expand_dims(x=padded, axes=[1], name=n())
    analysis = np.asarray(stft._analysis).T[:, None, :]  # (2 bins, 1, n_fft)
    spectrum = mb.conv(x=padded, weight=analysis.astype(np.float32), strides=[stft.hop], pad_type="valid", name=n())
    bins = stft.bins
    re, im = ops.slice_axis(spectrum, 1, 0, bins), ops.slice_axis(spectrum, 1, bins, 2 * bins)
    magnitude = mb.sqrt(x=ops.add(ops.mul(re, re), ops.mul(im, im)), name=n())
    phase = atan2(ops, im, re)
    # stft.STFT.transform's rules: +pi where the imaginary part is rounding on the negative real axis
    # (its sign would follow summation order), 0 where the whole bin is rounding.
    on_cut = mb.logical_and(
        x=mb.less(x=re, y=0.0, name=n()),
        y=mb.less_equal(x=mb.abs(x=im, name=n()), y=ops.mul(magnitude, BRANCH_CUT), name=n()),
        name=n(),
    )
    phase = mb.select(cond=on_cut, a=math.pi, b=phase, name=n())
    silent = mb.less(x=magnitude, y=SILENT_BIN, name=n())
    phase = mb.select(cond=silent, a=0.0, b=phase, name=n())
    mask, _ = masks.with_first(factor)
    return ops.mul(ops.concat([magnitude, phase], axis=1), mask)


def generator(ops: Ops, gen: Any, masks: Any, x: Var, style: Var, har: Var, on_part: Any = None) -> Var:
    """Generator.synthesize: stages of (LeakyReLU, ups, + noise branch, mean of resblocks), conv_post, iSTFT."""
    last = len(gen.ups) - 1
    factor = 2  # frames per text frame at x's rate
    m_out = masks.at(factor)[0]
    for i, up in enumerate(gen.ups):
        with ops.n.scope(f"stage{i}"):
            m_in, _ = masks.at(factor)
            factor *= up.stride
            m_out, c_out = masks.with_first(factor) if i == last else masks.at(factor)
            x = ops.leaky(x, _STAGE_SLOPE)
            stride, pad = gen.noise_convs[i].stride, gen.noise_convs[i].padding
            x_source = ops.conv(har, f"generator.noise_convs.{i}", None, stride=stride, pad=pad)
            x_source = _resblock(ops, gen.noise_res[i], f"generator.noise_res.{i}", x_source, style, m_out, c_out)
            x = ops.conv_transpose(x, f"generator.ups.{i}", m_in, stride=up.stride, crop=(up.padding, up.padding))
            if i == last:  # ReflectionPad1d((1, 0))
                x = ops.concat([ops.slice_axis(x, 2, 1, 2), x], axis=2)
            x = ops.add(x, x_source)
            k = gen.num_kernels
            blocks = range(i * k, (i + 1) * k)
            outs = [
                _resblock(ops, gen.resblocks[j], f"generator.resblocks.{j}", x, style, m_out, c_out) for j in blocks
            ]
            total = outs[0]
            for y in outs[1:]:
                total = ops.add(total, y)
            x = ops.mul(total, 1.0 / k)
        if on_part is not None:
            on_part(0.4 + 0.5 * (i + 1) / len(gen.ups))
    with ops.n.scope("tail"):
        return _tail(ops, gen, x, m_out)


def _resblock(ops: Ops, block: Any, name: str, x: Var, style: Var, mask: Var, count: Var) -> Var:
    """AdaINResBlock1: per dilation, x += conv2(snake(adain2(conv1(snake(adain1(x)))))). Convs masked."""
    for d, (c1, c2) in enumerate(zip(block.convs1, block.convs2)):
        h = ops.snake(ops.adain(x, style, f"{name}.adain1.{d}", mask, count), f"{name}.alpha1.{d}")
        h = ops.conv(h, f"{name}.convs1.{d}", mask, pad=c1.padding, dilation=c1.dilation)
        h = ops.snake(ops.adain(h, style, f"{name}.adain2.{d}", mask, count), f"{name}.alpha2.{d}")
        h = ops.conv(h, f"{name}.convs2.{d}", mask, pad=c2.padding, dilation=c2.dilation)
        x = ops.add(x, h)
    return x


def _tail(ops: Ops, gen: Any, x: Var, mask: Var) -> Var:
    """conv_post, exp / sin, inverse STFT as a transposed conv, cut to (1, 600 N)."""
    n = ops.n
    stft = gen.stft
    bins = stft.bins
    x = ops.conv(ops.leaky(x, _POST_SLOPE), "generator.conv_post", mask, pad=3)
    magnitude = mb.exp(x=ops.slice_axis(x, 1, 0, bins), name=n())
    phase = mb.sin(x=ops.slice_axis(x, 1, bins, 2 * bins), name=n())
    spectrum = ops.concat(
        [ops.mul(magnitude, mb.cos(x=phase, name=n())), ops.mul(magnitude, mb.sin(x=phase, name=n()))], axis=1
    )
    spectrum = ops.mul(spectrum, mask)  # frames past the real end add nothing, as in the MLX iSTFT
    synthesis = np.asarray(stft._synthesis)[:, None, :].astype(np.float32)  # (2 bins, 1, n_fft)
    frames = dims(x)[2]
    signal = mb.conv_transpose(x=spectrum, weight=synthesis, strides=[stft.hop], pad_type="valid", name=n())
    pad = stft.n_fft // 2
    length = (frames - 1) * stft.hop
    # torch.istft's normalizer over the real frames only: the last real samples see fewer windows.
    window = (stft._window**2).astype(np.float32)[None, None, :]  # (1, 1, n_fft)
    envelope = mb.conv_transpose(x=mask, weight=window, strides=[stft.hop], pad_type="valid", name=n())
    ratio = ops.div(signal, mb.maximum(x=envelope, y=1e-11, name=n()))  # past the real end: 0 / tiny
    ratio = mb.reshape(x=ratio, shape=[1, int(signal.shape[2])], name=n())
    return ops.slice_axis(ratio, 1, pad, pad + length)
