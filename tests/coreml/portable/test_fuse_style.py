"""fuse_style.py: linears of one computed input with constant weights (AdaIN style products) run as one
stacked product; members' expand_dims + split and the adds of a constant after them are absorbed;
values match numpy and the unfused program."""

from __future__ import annotations

import numpy as np
from portable_helpers import load, mb, save_program

from mlx_audio_coreml.coreml.portable import program
from mlx_audio_coreml.coreml.portable.fuse_style import STACKED_LINEAR

rng = np.random.default_rng(11)
WIDTHS = (8, 12, 6)


def _weights() -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (rng.standard_normal((2 * c, 16)).astype(np.float32), rng.standard_normal(2 * c).astype(np.float32))
        for c in WIDTHS
    ]


def _build(weights):
    def build(style):
        s = mb.tanh(x=style)  # computed, as the decoder's style vector is to the converted program
        outputs = []
        for w, b in weights[:-1]:  # AdaIN form: linear -> expand_dims -> split into scale, shift
            scale, shift = mb.split(
                x=mb.expand_dims(x=mb.linear(x=s, weight=w, bias=b), axes=[2]), num_splits=2, axis=1
            )
            outputs += [mb.add(x=scale, y=1.0), shift]
        w, b = weights[-1]
        plain = mb.linear(x=s, weight=w, bias=b)  # read twice: stacked, not absorbed
        outputs += [mb.mul(x=plain, y=plain), mb.add(x=plain, y=2.0)]
        return tuple(outputs)

    return build


def _reference(style: np.ndarray, weights) -> list[np.ndarray]:
    s = np.tanh(style)
    out: list[np.ndarray] = []
    for w, b in weights[:-1]:
        y = (s @ w.T + b)[:, :, None]
        half = y.shape[1] // 2
        out += [y[:, :half] + 1, y[:, half:]]
    y = s @ weights[-1][0].T + weights[-1][1]
    return [*out, y * y, y + 2]


def _predict(path, style: np.ndarray) -> tuple[object, list[np.ndarray]]:
    model = load(path)
    return model, [np.asarray(v) for v in model.predict({"style": style}).outputs.values()]


def test_style_products_become_one_node_matching_numpy_and_unfused(tmp_path, monkeypatch):
    weights = _weights()
    style = rng.standard_normal((1, 16)).astype(np.float32)
    path = save_program(tmp_path, _build(weights), [style.shape])
    model, got = _predict(path, style)

    assert model.program.rewrites["style_products"] == len(WIDTHS)
    ops = [n.op.name for n in model.program.block.nodes]
    assert ops.count(STACKED_LINEAR.name) == 1
    assert "linear" not in ops and "split" not in ops and "expand_dims" not in ops
    assert ops.count("add") == 1  # the scales' 1 + s absorbed; the plain product's + 2 is not its chain
    for value, want in zip(got, _reference(style, weights), strict=True):
        np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-5)

    monkeypatch.setattr(program, "fuse_style_products", lambda block, constants: 0)
    plain_model, plain = _predict(path, style)
    assert "linear" in [n.op.name for n in plain_model.program.block.nodes]
    for value, want in zip(got, plain, strict=True):
        np.testing.assert_allclose(value, want, rtol=1e-6, atol=1e-6)


def test_a_single_product_of_an_input_is_left_alone(tmp_path):
    (w, b), style = _weights()[0], rng.standard_normal((1, 16)).astype(np.float32)
    path = save_program(tmp_path, lambda style: mb.linear(x=mb.tanh(x=style), weight=w, bias=b), [style.shape])
    model, (got,) = _predict(path, style)
    assert model.program.rewrites["style_products"] == 0
    np.testing.assert_allclose(got, np.tanh(style) @ w.T + b, rtol=1e-5, atol=1e-5)
