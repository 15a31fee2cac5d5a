"""resample, affine and crop_resize against numpy references written from coremltools' op docs."""

from __future__ import annotations

import itertools

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import assert_close, ct, run_program

from mlx_audio_coreml.coreml.portable.ops import OpContext, crop, resize, sampling

mb = pytest.importorskip("coremltools.converters.mil").Builder
rng = np.random.default_rng(3)
IMAGE = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)  # (B, C, H, W)
NP_PAD = {"constant": "constant", "border": "edge", "reflection": "reflect", "symmetric": "symmetric"}
MARGIN = 40


def _ctx() -> OpContext:
    return OpContext("test", 8, (None,))


def np_pixels(c, n, mode, align):
    if mode == "unnormalized":
        return c
    lo, hi = (-1.0, 1.0) if mode == "normalized_minus_one_to_one" else (0.0, 1.0)
    unit = (c - lo) / (hi - lo)  # 0 at the low edge of the range, 1 at the high edge
    return unit * (n - 1) if align else unit * n - 0.5


def np_sample(image, py, px, method, padding, value):
    """Sample one (C, H, W) image at float positions by padding it with numpy's np.pad first."""
    padded = np.pad(
        image,
        ((0, 0), (MARGIN, MARGIN), (MARGIN, MARGIN)),
        mode=NP_PAD[padding],
        **({"constant_values": value} if padding == "constant" else {}),
    )
    out = np.zeros((image.shape[0],) + py.shape, np.float64)
    for pos in np.ndindex(py.shape):
        y, x = py[pos] + MARGIN, px[pos] + MARGIN
        if method == "nearest":
            out[(slice(None),) + pos] = padded[:, int(np.floor(y + 0.5)), int(np.floor(x + 0.5))]
            continue
        y0, x0 = int(np.floor(y)), int(np.floor(x))
        wy, wx = y - y0, x - x0
        patch = padded[:, y0 : y0 + 2, x0 : x0 + 2]
        out[(slice(None),) + pos] = (1 - wy) * ((1 - wx) * patch[:, 0, 0] + wx * patch[:, 0, 1]) + wy * (
            (1 - wx) * patch[:, 1, 0] + wx * patch[:, 1, 1]
        )
    return out


@pytest.mark.parametrize(
    "method, padding, mode, align",
    list(
        itertools.product(
            ["bilinear", "nearest"],
            ["constant", "border", "reflection", "symmetric"],
            ["unnormalized", "normalized_minus_one_to_one", "normalized_zero_to_one"],
            [True, False],
        )
    ),
)
def test_resample_matches_a_padded_numpy_image(method, padding, mode, align):
    scale = 6.0 if mode == "unnormalized" else 2.5
    coords = (rng.uniform(-scale, scale, (2, 3, 4, 2))).astype(np.float32)  # (B, Ho, Wo, (x, y))
    got = sampling.resample(_ctx(), mx.array(IMAGE), mx.array(coords), method, padding, 1.5, mode, align)
    for b in range(2):
        py = np_pixels(coords[b, ..., 1].astype(np.float64), 4, mode, align)
        px = np_pixels(coords[b, ..., 0].astype(np.float64), 5, mode, align)
        np.testing.assert_allclose(
            np.array(got[b]), np_sample(IMAGE[b], py, px, method, padding, 1.5), rtol=1e-5, atol=1e-5
        )


def test_affine_samples_the_transformed_output_grid():
    matrix = np.array([[0.9, -0.3, 0.1, 0.2, 1.1, -0.2], [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0]], np.float32)
    got = sampling.affine(
        _ctx(),
        mx.array(IMAGE),
        mx.array(matrix),
        3,
        6,
        "bilinear",
        "constant",
        0.0,
        "normalized_minus_one_to_one",
        True,
    )
    gx, gy = np.meshgrid(np.linspace(-1, 1, 6), np.linspace(-1, 1, 3))  # output grid, align_corners
    for b, (a0, a1, a2, b0, b1, b2) in enumerate(matrix.astype(np.float64)):
        px = np_pixels(a0 * gx + a1 * gy + a2, 5, "normalized_minus_one_to_one", True)
        py = np_pixels(b0 * gx + b1 * gy + b2, 4, "normalized_minus_one_to_one", True)
        np.testing.assert_allclose(
            np.array(got[b]), np_sample(IMAGE[b], py, px, "bilinear", "constant", 0.0), rtol=1e-5, atol=1e-5
        )


def np_box_grid(start, end, n, mode):
    """The Core ML spec's SamplingMode, as numpy.linspace rules over [start, end] (X - 1 = end - start)."""
    length = end - start
    if mode == "STRICT_ALIGN_CORNERS":
        rel = np.linspace(0, length, n)
    elif mode == "ALIGN_CORNERS":
        rel = np.full(1, length / 2) if n == 1 else np.linspace(0, length, n)
    elif mode == "DEFAULT":
        x = length + 1
        rel = np.minimum(np.linspace(0, x - x / n, n), length)
    elif mode == "OFFSET_CORNERS":
        spacing = max(1.0, length) / n
        rel = np.minimum(np.linspace(0.5 * spacing, 0.5 * spacing + (n - 1) * spacing, n), length)
    else:  # UNALIGN_CORNERS: resize_bilinear's rule with Xin = length + 1
        spacing = (length + 1) / n
        rel = np.clip(np.arange(n) * spacing + 0.5 * spacing - 0.5, 0, length)
    return start + rel


MODES = ["STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS"]


@pytest.mark.parametrize("mode", MODES)
def test_crop_resize_boxes_follow_the_spec_sampling_modes(mode):
    boxes = np.array([[0.5, 1.0, 2.5, 3.5], [1.0, 0.0, 3.0, 4.0], [-1.0, 2.0, 2.0, 6.0]], np.float32)
    indices = np.array([1, 0, 1], np.int32)
    got = crop.crop_resize(
        _ctx(),
        mx.array(IMAGE),
        boxes=mx.array(boxes),
        box_indices=mx.array(indices),
        target_height=3,
        target_width=4,
        sampling_mode=mode,
        pad_value=-7.0,
    )
    assert got.shape == (3, 3, 3, 4)
    for n, (h0, w0, h1, w1) in enumerate(boxes.astype(np.float64)):
        py, px = np.meshgrid(np_box_grid(h0, h1, 3, mode), np_box_grid(w0, w1, 4, mode), indexing="ij")
        want = np_sample(IMAGE[indices[n]], py, px, "bilinear", "border", 0.0)
        outside = (py < 0) | (py > 3) | (px < 0) | (px > 4)
        np.testing.assert_allclose(np.array(got[n]), np.where(outside, -7.0, want), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_crop_of_the_whole_image_is_resize_bilinear(mode):
    roi = np.array([[0, 0, 0, 1, 1]], np.float32).reshape(1, 1, 5, 1, 1)
    got = crop.crop_resize(
        _ctx(),
        mx.array(IMAGE),
        roi=mx.array(roi),
        target_height=7,
        target_width=3,
        normalized_coordinates=True,
        sampling_mode=mode,
    )
    want = resize.resize_bilinear(_ctx(), mx.array(IMAGE[:1]), 7, 3, mode)
    np.testing.assert_allclose(np.array(got[0]), np.array(want), rtol=1e-5, atol=1e-5)


def test_crop_box_modes_and_roi_forms_agree():
    corners = np.array([[0.5, 1.0, 2.5, 3.5]], np.float32)  # h0, w0, h1, w1
    forms = {
        "CORNERS_HEIGHT_FIRST": corners,
        "CORNERS_WIDTH_FIRST": corners[:, [1, 0, 3, 2]],
        "CENTER_SIZE_HEIGHT_FIRST": np.array([[1.5, 2.25, 2.0, 2.5]], np.float32),
        "CENTER_SIZE_WIDTH_FIRST": np.array([[2.25, 1.5, 2.5, 2.0]], np.float32),
    }
    outputs = []
    for mode, box in forms.items():
        roi = mx.array(box.reshape(1, 1, 4, 1, 1))  # 4 coordinates: the box on every image
        outputs.append(
            np.array(
                crop.crop_resize(
                    _ctx(), mx.array(IMAGE), roi=roi, target_height=2, target_width=3, box_coordinate_mode=mode
                )
            )
        )
    assert outputs[0].shape == (1, 2, 3, 2, 3)
    for out in outputs[1:]:
        np.testing.assert_allclose(out, outputs[0], rtol=1e-6, atol=1e-6)


def test_image_ops_run_in_a_package(tmp_path):
    """The registrations and parameter passing, through a converted iOS17 program."""
    coords = rng.uniform(-1.2, 1.2, (2, 3, 3, 2)).astype(np.float32)
    boxes = np.array([[0.0, 0.0, 1.0, 1.0], [0.2, 0.1, 0.9, 0.6]], np.float32)

    def build(x, c):
        return (
            mb.resample(
                x=x,
                coordinates=c,
                sampling_mode="bilinear",
                padding_mode="border",
                padding_value=0.0,
                coordinates_mode="normalized_minus_one_to_one",
                align_corners=False,
            ),
            mb.crop_resize(
                x=x,
                boxes=boxes,
                box_indices=np.array([1, 0], np.int32),
                target_height=2,
                target_width=2,
                normalized_coordinates=True,
                sampling_mode="ALIGN_CORNERS",
            ),
        )

    got = run_program(tmp_path, build, [IMAGE, coords], opset=ct.target.iOS17)
    want_resample = sampling.resample(
        _ctx(), mx.array(IMAGE), mx.array(coords), "bilinear", "border", 0.0, "normalized_minus_one_to_one", False
    )
    assert_close(got[0], np.array(want_resample))
    np.testing.assert_allclose(got[1][0], IMAGE[1][:, [0, 3]][:, :, [0, 4]], rtol=1e-5, atol=1e-5)
