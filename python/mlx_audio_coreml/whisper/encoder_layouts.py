"""The input/output layouts a Whisper encoder package can have, and how to recognise each one.

Three layouts exist in the wild; `CoreMLAudioEncoder` adapts to whichever a package has, so
packages users already own work next to the ones `convert` writes.

| layout       | input                                     | output                                   |
| ------------ | ----------------------------------------- | ---------------------------------------- |
| `default`    | `mel` [1, n_mels, 3000]                   | `encoder_states` [1, 1500, D]            |
| `whispercpp` | `logmel_data` [1, n_mels, 3000]           | `output` [1, 1500, D]                    |
| `whisperkit` | `melspectrogram_features` [1, n_mels, 1, 3000] | `encoder_output_embeds` [1, D, 1, 1500] |

`default` is ours: the mel goes in as the seed lays it out and the states come out as the MLX text
decoder reads them, so no transpose is needed on either side. Its I/O dtype follows the package's
precision (float16 I/O for a float16 package saves Core ML a conversion on the Neural Engine).
whisper.cpp feeds and reads float32 buffers whatever the precision inside. WhisperKit's packages use
float16 I/O and the channels-first (B, C, 1, S) shape the Neural Engine prefers.

The functions here accept numpy arrays and MLX arrays alike (both have reshape/transpose/astype);
the dtype an array must have is always read from the package's description, never assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..coreml.runtime import ModelDescription, TensorSpec
from ..errors import UnknownEncoderLayout

# Whisper's fixed window: 30 s of 10 ms frames in, half as many encoder positions out.
N_FRAMES = 3000
N_AUDIO_CTX = 1500

# Metadata key our converter writes; read back to confirm the layout a package claims.
LAYOUT_METADATA_KEY = "mlx_audio_coreml.layout"


@dataclass(frozen=True)
class EncoderLayout:
    """One published I/O convention for a Whisper encoder package."""

    name: str
    input_name: str
    output_name: str
    input_has_unit_axis: bool  # input is (B, n_mels, 1, frames) rather than (B, n_mels, frames)
    output_channels_first: bool  # output is (B, D, 1, n_ctx) rather than (B, n_ctx, D)
    fixed_io_dtype: str | None  # the dtype its published packages use; None: follows the precision

    def input_shape(self, n_mels: int, n_frames: int = N_FRAMES, batch: int = 1) -> tuple[int, ...]:
        if self.input_has_unit_axis:
            return (batch, n_mels, 1, n_frames)
        return (batch, n_mels, n_frames)

    def output_shape(self, d_model: int, n_ctx: int = N_AUDIO_CTX, batch: int = 1) -> tuple[int, ...]:
        if self.output_channels_first:
            return (batch, d_model, 1, n_ctx)
        return (batch, n_ctx, d_model)

    def io_dtype(self, precision: str) -> str:
        """The I/O dtype a package of this layout gets when converted at `precision`."""
        return self.fixed_io_dtype or precision

    def to_input(self, mel: Any, dtype: str) -> Any:
        """A mel (B, n_mels, frames) as this layout's input array of `dtype` (numpy dtype name)."""
        if len(mel.shape) != 3:
            raise ValueError(f"mel must be (B, n_mels, frames), got shape {tuple(mel.shape)}")
        if self.input_has_unit_axis:
            batch, n_mels, frames = mel.shape
            mel = mel.reshape(batch, n_mels, 1, frames)  # (B, n_mels, 1, frames)
        return _cast(mel, dtype)

    def from_output(self, states: Any) -> Any:
        """This layout's output array as encoder states (B, n_ctx, D), dtype unchanged."""
        if self.output_channels_first:
            if len(states.shape) != 4 or states.shape[2] != 1:
                raise ValueError(f"expected (B, D, 1, n_ctx), got shape {tuple(states.shape)}")
            batch, d_model, _, n_ctx = states.shape
            return states.reshape(batch, d_model, n_ctx).transpose(0, 2, 1)  # (B, n_ctx, D)
        if len(states.shape) != 3:
            raise ValueError(f"expected (B, n_ctx, D), got shape {tuple(states.shape)}")
        return states

    def shapes(self, description: ModelDescription) -> EncoderShapes:
        """Read n_mels, frames, n_ctx and D (and the I/O dtypes) from a package of this layout."""
        source, target = _io_specs(self, description)
        if self.input_has_unit_axis:
            batch, n_mels, _, n_frames = source.shape
        else:
            batch, n_mels, n_frames = source.shape
        if self.output_channels_first:
            _, d_model, _, n_ctx = target.shape
        else:
            _, n_ctx, d_model = target.shape
        return EncoderShapes(batch, n_mels, n_frames, n_ctx, d_model, source.dtype, target.dtype)


@dataclass(frozen=True)
class EncoderShapes:
    """What a package's description says about the encoder it holds."""

    batch: int
    n_mels: int
    n_frames: int
    n_ctx: int
    d_model: int
    input_dtype: str
    output_dtype: str


DEFAULT = EncoderLayout("default", "mel", "encoder_states", False, False, None)
WHISPERCPP = EncoderLayout("whispercpp", "logmel_data", "output", False, False, "float32")
WHISPERKIT = EncoderLayout("whisperkit", "melspectrogram_features", "encoder_output_embeds", True, True, None)

LAYOUTS: Mapping[str, EncoderLayout] = {layout.name: layout for layout in (DEFAULT, WHISPERCPP, WHISPERKIT)}


def get_layout(name: str) -> EncoderLayout:
    """The layout called `name`; ValueError naming the known ones otherwise."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown encoder layout '{name}'; choose one of {sorted(LAYOUTS)}") from None


def detect_layout(description: ModelDescription) -> EncoderLayout:
    """The layout of a package from its tensor names and shapes; UnknownEncoderLayout otherwise.

    A package matches a layout when it has exactly one input and one output with that layout's
    names and ranks, a unit axis where the layout has one, and a frame count twice the context
    (Whisper's stride-2 second conv). A layout written in our metadata must agree with the names.
    """
    found = _describe(description)
    if len(description.inputs) != 1 or len(description.outputs) != 1:
        raise UnknownEncoderLayout(found, "an encoder package has exactly one input and one output")
    in_name, out_name = description.inputs[0].name, description.outputs[0].name
    layout = next((c for c in LAYOUTS.values() if (c.input_name, c.output_name) == (in_name, out_name)), None)
    if layout is None:
        known = {name: (c.input_name, c.output_name) for name, c in LAYOUTS.items()}
        raise UnknownEncoderLayout(found, f"no known layout has these tensor names; known: {known}")
    problem = _shape_problem(layout, description)
    if problem:
        raise UnknownEncoderLayout(found, f"names match layout '{layout.name}' but {problem}")
    claimed = description.metadata.get(LAYOUT_METADATA_KEY)
    if claimed is not None and claimed != layout.name:
        raise UnknownEncoderLayout(found, f"metadata says layout '{claimed}', names say '{layout.name}'")
    return layout


def _io_specs(layout: EncoderLayout, description: ModelDescription) -> tuple[TensorSpec, TensorSpec]:
    source = description.input(layout.input_name)
    target = description.output(layout.output_name)
    if source is None or target is None:
        raise UnknownEncoderLayout(_describe(description), f"not a '{layout.name}' package")
    return source, target


def _shape_problem(layout: EncoderLayout, description: ModelDescription) -> str:
    """Why the shapes do not fit `layout`, or '' when they do."""
    source, target = _io_specs(layout, description)
    in_rank = 4 if layout.input_has_unit_axis else 3
    out_rank = 4 if layout.output_channels_first else 3
    if len(source.shape) != in_rank or len(target.shape) != out_rank:
        return f"ranks are {len(source.shape)} -> {len(target.shape)}, expected {in_rank} -> {out_rank}"
    if layout.input_has_unit_axis and source.shape[2] != 1:
        return f"input axis 2 is {source.shape[2]}, expected 1"
    if layout.output_channels_first and target.shape[2] != 1:
        return f"output axis 2 is {target.shape[2]}, expected 1"
    shapes = layout.shapes(description)
    if shapes.n_frames != 2 * shapes.n_ctx:
        return f"{shapes.n_frames} input frames cannot give {shapes.n_ctx} encoder positions"
    if source.shape[0] != target.shape[0]:
        return f"input batch {source.shape[0]} differs from output batch {target.shape[0]}"
    return ""


def _describe(description: ModelDescription) -> str:
    def spec(t: TensorSpec) -> str:
        return f"{t.name} {list(t.shape)} {t.dtype}"

    ins = ", ".join(spec(t) for t in description.inputs) or "none"
    outs = ", ".join(spec(t) for t in description.outputs) or "none"
    return f"inputs: {ins}; outputs: {outs}"


def _cast(array: Any, dtype: str) -> Any:
    """`array` as numpy dtype `dtype`, keeping it a numpy or an MLX array as it came."""
    if isinstance(array, np.ndarray):
        return array if array.dtype == np.dtype(dtype) else array.astype(dtype)
    import mlx.core as mx  # only MLX arrays reach here, so MLX is importable

    target = getattr(mx, dtype)
    return array if array.dtype == target else array.astype(target)
