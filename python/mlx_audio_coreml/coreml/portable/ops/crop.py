"""crop_resize: boxes cut from (B, C, H, W) images and resized bilinearly to (target_height, target_width).

Two forms: iOS15/16 `roi` (N, 1, 4|5, 1, 1), where 4 coordinates crop every image ->
(N, B, C, h, w) and 5 start with an image index -> (N, 1, C, h, w); iOS17 `boxes` (N, 4) with
`box_indices` (N,) -> (N, C, h, w). A box [start, end] along an axis is sampled as the Core ML
spec's SamplingMode samples [0, X-1], with X-1 = end - start; a sample outside the image takes
`pad_value` (iOS16+; 0 before).
UNALIGN_CORNERS is not in that spec (it is MIL's): it is taken as resize_bilinear's rule with
Xin = end - start + 1, which equals resize_bilinear for a whole-image box. Core ML's own rule for
other boxes is not documented; coremltools' one test of it (iOS15, an inverted normalized box
outside [0, 1]) expects a whole-image resize, which this rule does not give (the test fails here).
"""

from __future__ import annotations

import mlx.core as mx

from .registry import OpContext, as_bool, as_float, as_int, as_str, register
from .sampling import sample


def _box_edges(boxes: mx.array, mode: str) -> tuple[mx.array, mx.array, mx.array, mx.array]:
    """(N, 4) boxes in `box_coordinate_mode` -> h_start, w_start, h_end, w_end, each (N,)."""
    a, b, c, d = (boxes[:, k] for k in range(4))
    if mode == "CORNERS_HEIGHT_FIRST":
        return a, b, c, d
    if mode == "CORNERS_WIDTH_FIRST":
        return b, a, d, c
    if mode == "CENTER_SIZE_HEIGHT_FIRST":
        return a - c / 2, b - d / 2, a + c / 2, b + d / 2
    if mode == "CENTER_SIZE_WIDTH_FIRST":
        return b - d / 2, a - c / 2, b + d / 2, a + c / 2
    raise ValueError(f"unknown box_coordinate_mode '{mode}'")


def box_grid(start: mx.array, end: mx.array, count: int, mode: str) -> mx.array:
    """Sample positions (N, count) along boxes [start, end] (N,) for a crop_resize sampling mode."""
    length = (end - start)[:, None]  # (N, 1): the "X - 1" of the spec's interval
    i = mx.arange(count, dtype=mx.float32)[None, :]
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if count == 1:
            rel = length / 2 if mode == "ALIGN_CORNERS" else mx.zeros_like(length)
        else:
            rel = i * length / (count - 1)
    elif mode == "DEFAULT":
        rel = i * (length + 1) / count
    elif mode == "OFFSET_CORNERS":
        spacing = mx.maximum(length, 1.0) / count
        rel = 0.5 * spacing + i * spacing
    elif mode == "UNALIGN_CORNERS":
        spacing = (length + 1) / count
        rel = i * spacing + 0.5 * spacing - 0.5
    else:
        raise ValueError(f"unknown sampling_mode '{mode}'")
    rel = mx.clip(rel, mx.minimum(length, 0.0), mx.maximum(length, 0.0))  # grid points stay in the box
    return start[:, None] + rel


def _crop(x: mx.array, boxes: mx.array, indices: mx.array, size: tuple[int, int], params: dict) -> mx.array:
    """Crops (N, C, h, w) of x[indices[n]] over boxes (N, 4)."""
    height, width = x.shape[2], x.shape[3]
    h0, w0, h1, w1 = _box_edges(boxes.astype(mx.float32), params["box_mode"])
    scale_h = params["spatial_scale"] * ((height - 1) if params["normalized"] else 1)
    scale_w = params["spatial_scale"] * ((width - 1) if params["normalized"] else 1)
    ys = box_grid(h0 * scale_h, h1 * scale_h, size[0], params["sampling"])  # (N, h)
    xs = box_grid(w0 * scale_w, w1 * scale_w, size[1], params["sampling"])  # (N, w)
    py = mx.broadcast_to(ys[:, :, None], (ys.shape[0], size[0], size[1]))
    px = mx.broadcast_to(xs[:, None, :], (xs.shape[0], size[0], size[1]))
    images = mx.take(x, indices.astype(mx.int32), axis=0)  # (N, C, H, W)
    values = sample(images, mx.clip(py, 0, height - 1), mx.clip(px, 0, width - 1), "bilinear", "border", 0.0)
    outside = (py < 0) | (py > height - 1) | (px < 0) | (px > width - 1)
    return mx.where(outside[:, None], mx.array(params["pad_value"], dtype=values.dtype), values)


@register(
    "crop_resize",
    static=(
        "target_height",
        "target_width",
        "normalized_coordinates",
        "spatial_scale",
        "box_coordinate_mode",
        "sampling_mode",
        "pad_value",
    ),
)
def crop_resize(
    ctx: OpContext,
    x: mx.array,
    roi: mx.array | None = None,
    boxes: mx.array | None = None,
    box_indices: mx.array | None = None,
    target_height=1,
    target_width=1,
    normalized_coordinates=False,
    spatial_scale=1.0,
    box_coordinate_mode="CORNERS_HEIGHT_FIRST",
    sampling_mode="DEFAULT",
    pad_value=0.0,
) -> mx.array:
    params = dict(
        normalized=as_bool(normalized_coordinates),
        spatial_scale=as_float(spatial_scale),
        box_mode=as_str(box_coordinate_mode),
        sampling=as_str(sampling_mode),
        pad_value=as_float(pad_value),
    )
    size = (as_int(target_height), as_int(target_width))
    if roi is None:  # iOS17: (N, 4) boxes, each from the image box_indices[n]
        if boxes is None:
            raise ValueError("crop_resize needs roi (iOS16) or boxes (iOS17)")
        indices = box_indices if box_indices is not None else mx.arange(boxes.shape[0])
        return _crop(x, boxes, indices, size, params)
    rows = roi.reshape(roi.shape[0], -1)  # (N, 4) or (N, 5)
    if rows.shape[1] == 5:
        crops = _crop(x, rows[:, 1:], rows[:, 0], size, params)
        return crops[:, None]  # (N, 1, C, h, w)
    count, batch = rows.shape[0], x.shape[0]
    every = mx.repeat(rows, batch, axis=0)  # (N*B, 4): each box on every image
    crops = _crop(x, every, mx.tile(mx.arange(batch), count), size, params)
    return crops.reshape(count, batch, *crops.shape[1:])  # (N, B, C, h, w)
