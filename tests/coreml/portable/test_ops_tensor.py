"""Shape, indexing, convolution, normalization, pooling, resizing and attention ops against numpy."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import assert_close, ct, mb, run_program

from mlx_audio_coreml.coreml.portable.ops import conv as conv_ops

rng = np.random.default_rng(1)
X = rng.standard_normal((2, 4, 6)).astype(np.float32)


def test_shape_ops(tmp_path):
    def build(x):
        a, b = mb.split(x=x, num_splits=2, axis=1)
        return (
            mb.reshape(x=x, shape=[4, -1]),
            mb.transpose(x=x, perm=[2, 0, 1]),
            mb.concat(values=(x, x), axis=-1),
            mb.concat(values=(x, x), axis=1, interleave=True),
            mb.stack(values=(a, b), axis=0),
            mb.squeeze(x=mb.expand_dims(x=x, axes=[0, -1]), axes=[0]),
            mb.tile(x=x, reps=[1, 2, 1]),
            mb.slice_by_index(
                x=x, begin=[0, 3, 0], end=[2, 0, 6], stride=[1, -2, 2], squeeze_mask=[True, False, False]
            ),
            mb.slice_by_size(x=x, begin=[1, 1, 2], size=[1, -1, 3]),
            mb.reverse(x=x, axes=[-1]),
            mb.band_part(x=x, lower=1, upper=0),
            mb.flatten2d(x=x, axis=2),
        )

    got = run_program(tmp_path, build, [X])
    want = [
        X.reshape(4, -1),
        X.transpose(2, 0, 1),
        np.concatenate([X, X], -1),
        np.stack([X, X], 2).reshape(2, 8, 6),
        np.stack(np.split(X, 2, axis=1)),
        X[..., None],
        np.tile(X, (1, 2, 1)),
        X[0, 3:0:-2, 0:6:2],
        X[1:2, 1:, 2:5],
        X[..., ::-1],
        X * np.tril(np.triu(np.ones((4, 6)), -1), 0),
        X.reshape(8, 6),
    ]
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"output {i}: shape {g.shape} != {w.shape}"
        assert_close(g, w)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_pad_modes(tmp_path, mode):
    (got,) = run_program(tmp_path, lambda x: mb.pad(x=x, pad=[1, 2, 2, 1], mode=mode, constant_val=0.5), [X])
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
    kwargs = {"constant_values": 0.5} if mode == "constant" else {}
    assert_close(got, np.pad(X, [(0, 0), (1, 2), (2, 1)], mode=np_mode, **kwargs))


def test_gather_family(tmp_path):
    indices = np.array([[3, 0], [1, 1]], dtype=np.int32)
    along = rng.integers(0, 4, size=(2, 4, 6)).astype(np.int32)

    def build(x):
        return (
            mb.gather(x=x, indices=indices, axis=1),
            mb.gather(x=x, indices=np.array([[1, 0], [2, 3]], dtype=np.int32), axis=1, batch_dims=1),
            mb.gather_along_axis(x=x, indices=along, axis=1),
            mb.gather_nd(x=x, indices=np.array([[0, 1], [1, 3]], dtype=np.int32)),
            mb.scatter(
                data=x,
                indices=np.array([2, 0], dtype=np.int32),
                updates=np.ones((2, 2, 6), np.float32),
                axis=1,
                mode="add",
            ),
        )

    got = run_program(tmp_path, build, [X])
    scattered = X.copy()
    scattered[:, [2, 0]] += 1
    want = [
        np.take(X, indices, axis=1),
        np.stack([X[0][[1, 0]], X[1][[2, 3]]]),
        np.take_along_axis(X, along, axis=1),
        X[[0, 1], [1, 3]],
        scattered,
    ]
    for g, w in zip(got, want):
        assert_close(g, w)


def _conv_reference(x, w, stride, pad, dilation=1, groups=1):
    """Direct 1-D convolution, (N, C, T) x (O, C/g, K)."""
    x = np.pad(x, [(0, 0), (0, 0), pad])
    n, c, t = x.shape
    o, cg, k = w.shape
    span = (k - 1) * dilation + 1
    t_out = (t - span) // stride + 1
    out = np.zeros((n, o, t_out))
    per_group = o // groups
    for oc in range(o):
        g = oc // per_group
        xs = x[:, g * cg : (g + 1) * cg]
        for i in range(t_out):
            window = xs[:, :, i * stride : i * stride + span : dilation]
            out[:, oc, i] = np.einsum("nck,ck->n", window, w[oc])
    return out


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_conv1d_like_whisper_frontend(tmp_path, precision):
    w1 = rng.standard_normal((8, 4, 3)).astype(np.float32) * 0.3
    w2 = rng.standard_normal((8, 4, 3)).astype(np.float32) * 0.3  # grouped, dilated
    w3 = rng.standard_normal((8, 4, 1)).astype(np.float32)  # pointwise: a linear layer over channels
    bias = rng.standard_normal(8).astype(np.float32)

    def build(x):
        same = mb.conv(x=x, weight=w1, bias=bias, pad_type="custom", pad=[1, 1], strides=[2])
        grouped = mb.conv(x=mb.concat(values=(x, x), axis=1), weight=w2, pad_type="same", dilations=[2], groups=2)
        return same, grouped, mb.conv(x=x, weight=w3, bias=bias)

    same, grouped, pointwise = run_program(tmp_path, build, [X], precision=precision)
    assert_close(pointwise, _conv_reference(X, w3, 1, (0, 0)) + bias[:, None], precision)
    assert_close(same, _conv_reference(X, w1, 2, (1, 1)) + bias[:, None], precision)
    assert_close(grouped, _conv_reference(np.concatenate([X, X], 1), w2, 1, (2, 2), dilation=2, groups=2), precision)


@pytest.mark.parametrize("product_route", [True, False], ids=["cpu-product", "gpu-dilated-conv"])
def test_conv_transpose_inverts_the_shape_of_a_strided_conv(tmp_path, monkeypatch, product_route):
    # The GPU's route (MLX's input-dilated convolution) is forced here on the CPU to check it too.
    monkeypatch.setattr(conv_ops, "product_route", lambda: product_route)
    w = rng.standard_normal((4, 3, 4)).astype(np.float32)  # (C_in, C_out, K)

    def build(x):
        return mb.conv_transpose(x=x, weight=w, strides=[2], pad_type="custom", pad=[1, 1])

    (got,) = run_program(tmp_path, build, [X])
    full = np.zeros((2, 3, (6 - 1) * 2 + 4))
    for i in range(6):  # every input step scatters a kernel-sized patch
        full[:, :, 2 * i : 2 * i + 4] += np.einsum("nc,cok->nok", X[:, :, i], w)
    assert_close(got, full[:, :, 1:-1])


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_norms(tmp_path, precision):
    gamma = rng.standard_normal(6).astype(np.float32)
    beta = rng.standard_normal(6).astype(np.float32)
    mean, var = rng.standard_normal(4).astype(np.float32), (rng.random(4) + 0.5).astype(np.float32)

    def build(x):
        return (
            mb.layer_norm(x=x, axes=[-1], gamma=gamma, beta=beta, epsilon=1e-5),
            mb.layer_norm(x=x, axes=[1, 2], epsilon=1e-5),
            mb.batch_norm(x=x, mean=mean, variance=var, epsilon=1e-5),
            mb.instance_norm(x=x, epsilon=1e-5),
        )

    got = run_program(tmp_path, build, [X], precision=precision)

    def norm(v, axes):
        return (v - v.mean(axes, keepdims=True)) / np.sqrt(v.var(axes, keepdims=True) + 1e-5)

    want = [norm(X, -1) * gamma + beta, norm(X, (1, 2)), (X - mean[:, None]) / np.sqrt(var[:, None] + 1e-5), norm(X, 2)]
    for g, w in zip(got, want):
        assert_close(g, w, precision)


def test_pooling(tmp_path):
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)

    def build(v):
        return (
            mb.max_pool(x=v, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid"),
            mb.avg_pool(x=v, kernel_sizes=[3, 3], strides=[1, 1], pad_type="same", exclude_padding_from_average=True),
        )

    max_got, avg_got = run_program(tmp_path, build, [x])
    assert_close(max_got, x[:, :, :4, :6].reshape(1, 2, 2, 2, 3, 2).max((3, 5)))
    padded = np.pad(x, [(0, 0), (0, 0), (1, 1), (1, 1)])
    ones = np.pad(np.ones_like(x), [(0, 0), (0, 0), (1, 1), (1, 1)])
    total = sum(padded[:, :, i : i + 5, j : j + 6] for i in range(3) for j in range(3))
    count = sum(ones[:, :, i : i + 5, j : j + 6] for i in range(3) for j in range(3))
    assert_close(avg_got, total / count)


def test_upsampling(tmp_path):
    x = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)

    def build(v):
        return (
            mb.upsample_nearest_neighbor(x=v, scale_factor_height=2, scale_factor_width=3),
            mb.upsample_bilinear(x=v, scale_factor_height=2.0, scale_factor_width=2.0, align_corners=True),
        )

    nearest, bilinear = run_program(tmp_path, build, [x])
    assert_close(nearest, x.repeat(2, axis=2).repeat(3, axis=3))
    rows, cols = np.linspace(0, 2, 6), np.linspace(0, 3, 8)  # align_corners grid
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, 2), np.minimum(c0 + 1, 3)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = x[..., r0, :][..., c0] * (1 - fc) + x[..., r0, :][..., c1] * fc
    bottom = x[..., r1, :][..., c0] * (1 - fc) + x[..., r1, :][..., c1] * fc
    assert_close(bilinear, top * (1 - fr) + bottom * fr)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_scaled_dot_product_attention_with_masks(tmp_path, precision):
    q, k, v = (rng.standard_normal((1, 2, 5, 8)).astype(np.float32) for _ in range(3))
    keep = np.tril(np.ones((5, 5), dtype=bool))

    def build(a, b, c):
        return (
            mb.scaled_dot_product_attention(query=a, key=b, value=c),
            mb.scaled_dot_product_attention(query=a, key=b, value=c, attn_mask=keep),
        )

    plain, masked = run_program(tmp_path, build, [q, k, v], precision=precision, opset=ct.target.iOS18)

    def reference(mask):
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(8) + mask
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        return weights / weights.sum(-1, keepdims=True) @ v

    assert_close(plain, reference(0.0), precision)
    assert_close(masked, reference(np.where(keep, 0.0, -np.inf)), precision)
