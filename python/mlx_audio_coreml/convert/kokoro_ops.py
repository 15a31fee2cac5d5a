"""MIL building blocks of the Kokoro vocoder program: named ops, masked convolutions and masked AdaIN.

Every activation is channels first, `(1, C, T)`, as MIL's conv defines it. A bucketed package sees
padded frames; each helper here takes the validity mask of its time axis, `(1, 1, T)` (1 = a real
frame), so that (a) a conv reads zeros past the real frames, exactly as the MLX decoder's zero padding
of the unpadded chunk does, and (b) instance-norm statistics count real frames only.
Op names carry a scope (`Namer.scope`): the float16 conversion keeps chosen scopes in float32.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from coremltools.converters.mil.mil import Var

from ._builder import mb

Operand = Var | float | np.ndarray  # an op input: a graph value or a constant folded into the op
INSTANCE_NORM_EPS = 1e-5  # torch.nn.InstanceNorm1d's default, as the MLX decoder uses


def dims(x: Var) -> tuple[int, ...]:
    """A value's static shape (the builder's stubs type `Var.shape` loosely)."""
    shape: Sequence[Any] = x.shape
    return tuple(int(d) for d in shape)


class Namer:
    """Unique op names `<scope>__<n>`; the scope tells the float16 pass what to leave in float32."""

    def __init__(self) -> None:
        self._scope = "main"
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return f"{self._scope}__{self._count}"

    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        previous, self._scope = self._scope, name
        try:
            yield
        finally:
            self._scope = previous


class Ops:
    """The decoder's weights (PyTorch layouts, by MLX parameter name) and the ops built from them."""

    def __init__(self, weights: Mapping[str, np.ndarray], namer: Namer) -> None:
        self.w = weights
        self.n = namer

    def const(self, value: np.ndarray | float) -> Var:
        return mb.const(val=np.asarray(value, dtype=np.float32), name=self.n())

    def mul(self, x: Operand, y: Operand) -> Var:
        return mb.mul(x=x, y=y, name=self.n())

    def add(self, x: Operand, y: Operand) -> Var:
        return mb.add(x=x, y=y, name=self.n())

    def sub(self, x: Operand, y: Operand) -> Var:
        return mb.sub(x=x, y=y, name=self.n())

    def div(self, x: Operand, y: Operand) -> Var:
        return mb.real_div(x=x, y=y, name=self.n())

    def leaky(self, x: Var, slope: float) -> Var:
        return mb.leaky_relu(x=x, alpha=slope, name=self.n())

    def concat(self, values: list[Var], axis: int) -> Var:
        return mb.concat(values=values, axis=axis, name=self.n())

    def slice_axis(self, x: Var, axis: int, begin: int, end: int) -> Var:
        """x[..., begin:end, ...] on `axis` (static bounds; end may be negative)."""
        rank = x.rank
        b, e = [0] * rank, [0] * rank
        bm, em = [True] * rank, [True] * rank
        b[axis], e[axis], bm[axis], em[axis] = begin, end, False, False
        return mb.slice_by_index(x=x, begin=b, end=e, begin_mask=bm, end_mask=em, name=self.n())

    def repeat_time(self, x: Var, factor: int) -> Var:
        """(1, C, T) -> (1, C, T * factor), each frame repeated (nearest-neighbour upsampling)."""
        _, channels, frames = dims(x)
        x = mb.expand_dims(x=x, axes=[3], name=self.n())
        x = mb.tile(x=x, reps=[1, 1, 1, factor], name=self.n())
        return mb.reshape(x=x, shape=[1, channels, frames * factor], name=self.n())

    def conv(self, x: Var, name: str, mask: Var | None, *, stride: int = 1, pad: int = 0, dilation: int = 1,
             bias: bool = True) -> Var:  # fmt: skip
        """Conv1d with MLX weight `name` ((out, k, in) in MLX, (out, in, k) in MIL); input masked first."""
        if mask is not None:
            x = self.mul(x, mask)
        weight = self.w[name + ".weight"]
        kwargs = {"bias": self.w[name + ".bias"]} if bias else {}
        return mb.conv(
            x=x, weight=weight, strides=[stride], pad_type="custom", pad=[pad, pad], dilations=[dilation],
            name=self.n(), **kwargs,
        )  # fmt: skip

    def conv_transpose(self, x: Var, name: str, mask: Var, *, stride: int, crop: tuple[int, int],
                       groups: int = 1) -> Var:  # fmt: skip
        """ConvTranspose1d (MIL weight (in, out / groups, k)), `crop` frames cut from each end; input masked."""
        return mb.conv_transpose(
            x=self.mul(x, mask), weight=self.w[name + ".weight"], bias=self.w[name + ".bias"],
            strides=[stride], pad_type="custom", pad=list(crop), groups=groups, name=self.n(),
        )  # fmt: skip

    def style_affine(self, style: Var, name: str) -> tuple[Var, Var]:
        """AdaIN's fc: style (1, S) -> gamma, beta, each (1, C, 1)."""
        h = mb.linear(x=style, weight=self.w[name + ".fc.weight"], bias=self.w[name + ".fc.bias"], name=self.n())
        h = mb.expand_dims(x=h, axes=[2], name=self.n())  # (1, 2C, 1)
        gamma, beta = mb.split(x=h, num_splits=2, axis=1, name=self.n())
        return gamma, beta

    def adain(self, x: Var, style: Var, name: str, mask: Var, count: Var) -> Var:
        """Instance norm over the real frames only, then (1 + gamma) x + beta."""
        gamma, beta = self.style_affine(style, name)
        total = mb.reduce_sum(x=self.mul(x, mask), axes=[2], keep_dims=True, name=self.n())
        mean = self.div(total, count)
        centred = self.sub(x, mean)
        masked = self.mul(centred, mask)
        var = self.div(mb.reduce_sum(x=self.mul(masked, masked), axes=[2], keep_dims=True, name=self.n()), count)
        normed = self.mul(centred, mb.rsqrt(x=var, epsilon=INSTANCE_NORM_EPS, name=self.n()))
        return self.add(self.mul(normed, self.add(gamma, 1.0)), beta)

    def snake(self, x: Var, alpha_name: str) -> Var:
        """x + sin(alpha x)^2 / alpha, alpha per channel."""
        alpha = self.w[alpha_name]  # (1, C, 1)
        s = mb.sin(x=self.mul(x, alpha), name=self.n())
        return self.add(x, self.mul(self.mul(s, s), (1.0 / alpha).astype(np.float32)))


def atan2(ops: Ops, imag: Var, real: Var) -> Var:
    """torch.angle of real + i imag from MIL's atan: the quadrant fixed by selects (+pi on the negative real axis)."""
    n = ops.n
    zero_real = mb.equal(x=real, y=0.0, name=n())
    safe_real = mb.select(cond=zero_real, a=1.0, b=real, name=n())
    base = mb.atan(x=ops.div(imag, safe_real), name=n())
    upper = mb.greater_equal(x=imag, y=0.0, name=n())
    shift = mb.select(cond=upper, a=math.pi, b=-math.pi, name=n())
    left = mb.select(cond=mb.less(x=real, y=0.0, name=n()), a=ops.add(base, shift), b=base, name=n())
    vertical = ops.mul(mb.sign(x=imag, name=n()), math.pi / 2)
    return mb.select(cond=zero_real, a=vertical, b=left, name=n())
