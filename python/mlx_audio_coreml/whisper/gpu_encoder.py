"""The Whisper audio encoder laid out for a CUDA GPU: fused q/k/v weights, compiled, handed over early.

`GpuEncoder(encoder, options)` computes what `WhisperEncoder.__call__` computes (mel (B, frames,
n_mels) channels-last -> features (B, n_ctx, n_state)) from the same weights, rearranged once:
- q/k/v as one (3 D, D) product (the key has no bias: a zero block), one launch instead of three;
- the two convolutions as products over stacked shifted frames ("im2col"), or MLX's conv1d;
- attention through `mx.fast.scaled_dot_product_attention` or spelled out (scores, softmax, AV);
- compiled per layer (one graph reused by every layer, weights as inputs), whole, or not at all;
- optionally each residual add, bias and the layer norm after it, and the GELU, as custom CUDA kernels;
- `mx.async_eval` after every few layers, so the GPU starts before the host has built the window.
The choice between these is made from measurements on the card (bench/gpu_encoder_probe.py);
`DEFAULT` holds the measured best. The CPU keeps `WhisperEncoder`'s own path (host math).

`WhisperEncoder.__call__` hands its work to `prepared(self)` when that is not None (MLX's default
device is a CUDA GPU and the products are plain, unquantized). One `GpuEncoder` is kept per
encoder, rebuilt when its weights are replaced (a load, a dtype change or quantization swaps the
arrays; the identity of a few of them is checked per call, not all ~500). The fused q/k/v weights
are a copy: 3 D^2 values a layer (~315 MB in float16 for large-v3's encoder) on top of the module's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import mlx.core as mx
import mlx.nn as nn

from ..errors import ShapeConversionFailed
from . import gpu_encoder_kernels as kernels

if TYPE_CHECKING:  # model.py calls into this module: no import cycle at run time
    from .model import ResidualAttentionBlock, WhisperEncoder

Attention = Literal["sdpa", "explicit"]
Front = Literal["conv", "im2col"]
Compile = Literal["none", "layer", "whole"]
Residual = Literal["add", "gemm"]
LN_EPS = 1e-5  # nn.LayerNorm's default, as the encoder's layer norms use


@dataclass(frozen=True)
class GpuEncoderOptions:
    """How `GpuEncoder` lays out and schedules the encoder; every choice computes the module's function."""

    fuse_qkv: bool = True
    attention: Attention = "sdpa"
    front: Front = "conv"
    compile: Compile = "whole"
    pretranspose: bool = False  # products' weights stored (in, out) contiguous instead of read as W.T
    residual: Residual = "add"  # "gemm": x + b goes in as the product's C (cuBLASLt beta = 1), no separate add
    add_ln: bool = False  # residual add + bias + next layer norm as one kernel (gpu_encoder_kernels); ignores residual
    # Start the GPU on the first layers while the host still builds the rest: `mx.async_eval` (which
    # commits MLX's CUDA graph) after every N layers; with compile="whole", units of N layers are compiled.
    commit_every: int = 0
    gelu_kernel: bool = False  # the MLP's GELU as a vectorized CUDA kernel in float32 (gpu_encoder_kernels.gelu)


# What the product runs on CUDA: q/k/v fused, MLX's fast attention, the convs as they are, compiled
# units of two layers each handed to the GPU as soon as built, add + layer norm and GELU as our kernels.
# H100, large-v3-turbo, float16: 5.74 ms a window at batch 1 (module path 8.05 compiled, 8.41 eager),
# 5.02 at batch 8 (bench/results/gpu_encoder_h100.md, run 2).
DEFAULT = GpuEncoderOptions(compile="whole", commit_every=2, add_ln=True, gelu_kernel=True)


@dataclass(frozen=True)
class LayerWeights:
    """One block's weights, products as (out, in) like nn.Linear; qkv fused or (q, k, v) apart."""

    ln1: tuple[mx.array, mx.array]
    qkv: tuple[mx.array, mx.array] | tuple[tuple[mx.array, mx.array | None], ...]
    out: tuple[mx.array, mx.array]
    ln2: tuple[mx.array, mx.array]
    fc1: tuple[mx.array, mx.array]
    fc2: tuple[mx.array, mx.array]

    def flat(self) -> list[mx.array]:
        """The arrays in a fixed order, for a compiled layer taking them as inputs."""
        qkv = list(self.qkv) if isinstance(self.qkv[0], mx.array) else [a for p in self.qkv for a in p if a is not None]
        return [*self.ln1, *qkv, *self.out, *self.ln2, *self.fc1, *self.fc2]  # type: ignore[list-item]


def _linear_pair(layer: nn.Linear) -> tuple[mx.array, mx.array]:
    return layer.weight, layer.bias


def layer_weights(block: ResidualAttentionBlock, fuse_qkv: bool) -> LayerWeights:
    attn = block.attn
    if fuse_qkv:
        w = mx.concatenate([attn.query.weight, attn.key.weight, attn.value.weight], axis=0)
        b = mx.concatenate([attn.query.bias, mx.zeros_like(attn.query.bias), attn.value.bias])
        qkv: tuple = (w, b)
    else:
        qkv = (_linear_pair(attn.query), (attn.key.weight, None), _linear_pair(attn.value))
    ln1, ln2 = block.attn_ln, block.mlp_ln
    return LayerWeights(
        (ln1.weight, ln1.bias),
        qkv,
        _linear_pair(attn.out),
        (ln2.weight, ln2.bias),
        _linear_pair(block.mlp1),
        _linear_pair(block.mlp2),
    )


def _affine(x: mx.array, w: mx.array, b: mx.array | None, transposed: bool = False) -> mx.array:
    """x W^T + b; `transposed`: w is already W^T, (in, out)."""
    wt = w if transposed else w.T
    return x @ wt if b is None else mx.addmm(b, x, wt)


def _residual(x: mx.array, y: mx.array, w: mx.array, b: mx.array, options: GpuEncoderOptions) -> mx.array:
    """x + y W^T + b, the residual add separate or as the product's accumulator."""
    if options.residual == "gemm":
        return mx.addmm(x + b, y, w if options.pretranspose else w.T)
    return x + _affine(y, w, b, options.pretranspose)


def attend(q: mx.array, k: mx.array, v: mx.array, how: Attention) -> mx.array:
    """q, k, v (B, H, T, Dh) -> (B, H, T, Dh), unmasked, scaled by Dh^-1/2."""
    scale = q.shape[-1] ** -0.5
    if how == "sdpa":
        return mx.fast.scaled_dot_product_attention(q, k, v, scale=scale)
    scores = (q * mx.array(scale, q.dtype)) @ k.swapaxes(-1, -2)
    return mx.softmax(scores, axis=-1, precise=True) @ v


def _gelu(x: mx.array, options: GpuEncoderOptions) -> mx.array:
    return kernels.gelu(x) if options.gelu_kernel else nn.gelu(x)


def _self_attention(h: mx.array, rest: list[mx.array], n_head: int, options: GpuEncoderOptions) -> tuple:
    """Attention over normed rows h (B, T, D) before the out projection; also the weights after q/k/v."""
    batch, length, width = h.shape
    t = options.pretranspose
    if options.fuse_qkv:
        qkv_w, qkv_b, *rest = rest
        qkv = _affine(h, qkv_w, qkv_b, t).reshape(batch, length, 3, n_head, width // n_head)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))
    else:
        qw, qb, kw, vw, vb, *rest = rest
        split = (batch, length, n_head, width // n_head)
        q, k, v = (
            _affine(h, w, b, t).reshape(split).transpose(0, 2, 1, 3) for w, b in ((qw, qb), (kw, None), (vw, vb))
        )
    y = attend(q, k, v, options.attention).transpose(0, 2, 1, 3).reshape(batch, length, width)
    return y, rest


def encoder_layer(x: mx.array, weights: list[mx.array], n_head: int, options: GpuEncoderOptions) -> mx.array:
    """One residual block: x + attention(ln1 x), then + mlp(ln2 x). `weights` in LayerWeights.flat order
    (products' weights transposed when `options.pretranspose`)."""
    t = options.pretranspose
    ln1w, ln1b, *rest = weights
    y, rest = _self_attention(mx.fast.layer_norm(x, ln1w, ln1b, LN_EPS), rest, n_head, options)
    ow, ob, ln2w, ln2b, f1w, f1b, f2w, f2b = rest
    x = _residual(x, y, ow, ob, options)
    h = _gelu(_affine(mx.fast.layer_norm(x, ln2w, ln2b, LN_EPS), f1w, f1b, t), options)
    return _residual(x, h, f2w, f2b, options)


def encoder_layer_add_ln(
    x: mx.array, h: mx.array, weights: list[mx.array], n_head: int, options: GpuEncoderOptions
) -> tuple[mx.array, mx.array]:
    """`encoder_layer` with each residual add fused with the layer norm after it (add_layer_norm):
    takes x and h = ln1(x), returns the block's output and the next layer norm of it. `weights`:
    LayerWeights.flat, then that next norm's weight and bias (ln1 of the next block, or ln_post)."""
    t = options.pretranspose
    _, _, *rest = weights  # ln1: already applied to h
    y, rest = _self_attention(h, rest, n_head, options)
    ow, ob, ln2w, ln2b, f1w, f1b, f2w, f2b, next_w, next_b = rest
    x, h = kernels.add_layer_norm(x, _affine(y, ow, None, t), ob, ln2w, ln2b)
    h = _gelu(_affine(h, f1w, f1b, t), options)
    return kernels.add_layer_norm(x, _affine(h, f2w, None, t), f2b, next_w, next_b)


def front_end(mel: mx.array, encoder: WhisperEncoder, im2col: tuple[mx.array, mx.array] | None) -> mx.array:
    """conv1 + GELU, conv2 (stride 2) + GELU, + positions: mel (B, 2 T, n_mels) -> (B, T, D)."""
    if im2col is None:
        x = nn.gelu(encoder.conv1(mel))
        x = nn.gelu(encoder.conv2(x))
    else:
        frames = mel.shape[1]
        p = mx.pad(mel, [(0, 0), (1, 1), (0, 0)])
        cols = mx.concatenate([p[:, 0:frames], p[:, 1 : frames + 1], p[:, 2 : frames + 2]], axis=-1)
        x = nn.gelu(mx.addmm(encoder.conv1.bias, cols, im2col[0].T))
        p = mx.pad(x, [(0, 0), (1, 1), (0, 0)])
        out = (frames - 1) // 2 + 1
        cols = mx.concatenate([p[:, 0 : 2 * out : 2], p[:, 1 : 2 * out + 1 : 2], p[:, 2 : 2 * out + 2 : 2]], axis=-1)
        x = nn.gelu(mx.addmm(encoder.conv2.bias, cols, im2col[1].T))
    return x + encoder._positional_embedding[: x.shape[1]]


class GpuEncoder:
    """A `WhisperEncoder`'s computation with GPU-friendly weights; call it like the module."""

    def __init__(self, encoder: WhisperEncoder, options: GpuEncoderOptions = DEFAULT) -> None:
        self.encoder = encoder
        self.options = options
        self.n_head = encoder.blocks[0].attn.n_head
        self.layers = [layer_weights(b, options.fuse_qkv).flat() for b in encoder.blocks]
        if options.pretranspose:  # the 2-D arrays are the products' weights
            self.layers = [[mx.contiguous(a.T) if a.ndim == 2 else a for a in layer] for layer in self.layers]
        c1, c2 = encoder.conv1.weight, encoder.conv2.weight  # (out, k, in): k-major columns match the stacking
        self.im2col = (c1.reshape(c1.shape[0], -1), c2.reshape(c2.shape[0], -1)) if options.front == "im2col" else None
        mx.eval(self.layers, self.im2col)
        if options.add_ln:  # each layer also carries the next norm's weights (ln_post after the last)
            norms = [self.layers[i + 1][:2] for i in range(len(self.layers) - 1)]
            norms.append([encoder.ln_post.weight, encoder.ln_post.bias])
            self.layers = [layer + norm for layer, norm in zip(self.layers, norms, strict=True)]
        self._per_layer = len(self.layers[0])
        chunked = options.compile == "whole" and options.commit_every > 0
        self._run_layer: Callable[..., tuple] = mx.compile(self._layer) if options.compile == "layer" else self._layer
        self._run_chunk: Callable[..., tuple] = mx.compile(self._chunk) if chunked else self._chunk
        whole = options.compile == "whole" and not chunked
        self._run: Callable[[mx.array], mx.array] = mx.compile(self._forward) if whole else self._forward

    def _layer(self, *args: mx.array) -> tuple[mx.array, ...]:
        """State (x,), or (x, ln1 x) with add_ln, then one layer's weights -> the next state."""
        if self.options.add_ln:
            return encoder_layer_add_ln(args[0], args[1], list(args[2:]), self.n_head, self.options)
        return (encoder_layer(args[0], list(args[1:]), self.n_head, self.options),)

    def _chunk(self, *args: mx.array) -> tuple[mx.array, ...]:
        """State, then the weights of consecutive layers -> the state after them (one compiled unit)."""
        n_state = 2 if self.options.add_ln else 1
        state, weights = args[:n_state], args[n_state:]
        for start in range(0, len(weights), self._per_layer):
            state = self._layer(*state, *weights[start : start + self._per_layer])
        return tuple(state)

    def _forward(self, mel: mx.array) -> mx.array:
        x = front_end(mel.astype(self.encoder.conv1.weight.dtype), self.encoder, self.im2col)
        first = self.layers[0]
        state: tuple[mx.array, ...] = (
            (x, mx.fast.layer_norm(x, first[0], first[1], LN_EPS)) if self.options.add_ln else (x,)
        )
        every = self.options.commit_every
        if self.options.compile == "whole" and every:  # compiled units of `every` layers
            for start in range(0, len(self.layers), every):
                state = self._run_chunk(*state, *[a for layer in self.layers[start : start + every] for a in layer])
                _commit(state)
        else:
            for i, weights in enumerate(self.layers):
                state = self._run_layer(*state, *weights)
                if every and (i + 1) % every == 0:
                    _commit(state)
        if self.options.add_ln:
            return state[-1]  # (x, h): the last layer's "next norm" is ln_post
        ln = self.encoder.ln_post
        return mx.fast.layer_norm(state[0], ln.weight, ln.bias, LN_EPS)

    def __call__(self, mel: mx.array) -> mx.array:
        n_ctx, n_mels = self.encoder._positional_embedding.shape[0], self.encoder.conv1.weight.shape[2]
        if mel.ndim != 3 or mel.shape[2] != n_mels or mel.shape[1] > 2 * n_ctx:
            raise ShapeConversionFailed([1, 2 * n_ctx, n_mels], mel.shape, "mel (B, frames, mels)")
        return self._run(mel)


def _commit(state: tuple[mx.array, ...]) -> None:
    """Hand the work so far to the GPU now (MLX otherwise waits for ~100 ops or the final eval)."""
    try:
        mx.async_eval(state)
    except ValueError:  # inside a caller's mx.compile trace: that caller decides when work runs
        pass


_CACHE_ATTR = "_gpu_encoder"  # the prepared GpuEncoder, kept on the WhisperEncoder it was built from
_disabled = [0]  # depth of `disabled()` blocks


@contextmanager
def disabled() -> Iterator[None]:
    """Inside, encoders run the module's own path on every device (benchmarks compare the two)."""
    _disabled[0] += 1
    try:
        yield
    finally:
        _disabled[0] -= 1


def on_cuda() -> bool:
    """MLX's default device is a CUDA GPU and no `disabled()` block is open."""
    return not _disabled[0] and _device_is_cuda()


def _device_is_cuda() -> bool:
    return mx.default_device().type == mx.DeviceType.gpu and mx.cuda.is_available()


def prepared(encoder: WhisperEncoder) -> GpuEncoder | None:
    """The encoder's GPU layout on a CUDA GPU (built once per set of weights), else None.

    Metal and the CPU keep the module's own path: the layouts were measured on an H100 only."""
    return for_encoder(encoder) if on_cuda() else None


def _plain(encoder: WhisperEncoder) -> bool:
    """Every product a plain nn.Linear (a quantized encoder keeps the module's path)."""
    linears = [m for b in encoder.blocks for m in (b.attn.query, b.attn.key, b.attn.value, b.attn.out, b.mlp1, b.mlp2)]
    return all(type(m) is nn.Linear for m in linears) and type(encoder.conv1) is nn.Conv1d


def _sentinels(encoder: WhisperEncoder) -> tuple[int, ...]:
    """Identities of arrays that any load, update, dtype change or quantization replaces (cheap per call)."""
    first, last = encoder.blocks[0], encoder.blocks[-1]
    arrays = (encoder.conv1.weight, first.attn.query.weight, first.attn.value.weight, last.mlp1.weight)
    return tuple(id(a) for a in (*arrays, last.mlp2.weight, encoder.ln_post.weight))


def for_encoder(encoder: WhisperEncoder, options: GpuEncoderOptions = DEFAULT) -> GpuEncoder | None:
    """A `GpuEncoder` for these weights on any device, kept on the encoder; None when quantized."""
    key = (_sentinels(encoder), options)
    cached = getattr(encoder, _CACHE_ATTR, None)
    if cached is None or cached[0] != key:
        cached = (key, GpuEncoder(encoder, options) if _plain(encoder) else None)
        object.__setattr__(encoder, _CACHE_ATTR, cached)  # a plain attribute, not a module parameter
    return cached[1]
