"""The seed's quantization option: int8 / int4 weights for Whisper's linear and embedding layers.

Uses MLX's affine group quantization (`mlx.nn.quantize`): each group of `group_size` weights along
the input axis stores `bits`-bit integers with a float scale and bias. Convolutions and layer norms
stay in floating point. The accuracy cost is measured by bench/quantization_accuracy.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.nn as nn

_NO_QUANTIZATION = {"", "none", "float16", "fp16", "f16", "float32", "fp32", "f32", "bfloat16", "bf16"}
_BITS = {"int8": 8, "8bit": 8, "q8": 8, "8": 8, "int4": 4, "4bit": 4, "q4": 4, "4": 4}


@dataclass(frozen=True)
class QuantizationSpec:
    bits: int  # 8 or 4
    group_size: int = 64  # weights sharing one scale and bias

    def __post_init__(self) -> None:
        if self.bits not in (2, 3, 4, 5, 6, 8):
            raise ValueError(f"MLX cannot quantize to {self.bits} bits")
        if self.group_size not in (32, 64, 128):
            raise ValueError(f"group size must be 32, 64 or 128, not {self.group_size}")

    @property
    def name(self) -> str:
        return f"int{self.bits}"


def parse_quantization(value: Any) -> QuantizationSpec | None:
    """None for floating point; a spec for "int8", "int4", 8, 4, an enum with such a value, or a spec."""
    if value is None or isinstance(value, QuantizationSpec):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return QuantizationSpec(value)
    key = str(getattr(value, "value", value)).lower().strip()
    if key in _NO_QUANTIZATION:
        return None
    if key in _BITS:
        return QuantizationSpec(_BITS[key])
    if hasattr(value, "name") and str(value.name).lower() in _BITS:  # an enum member named int8 / int4
        return QuantizationSpec(_BITS[str(value.name).lower()])
    raise ValueError(f"unknown quantization {value!r}: use int8, int4 or None")


def quantize_model(model: nn.Module, spec: QuantizationSpec, only: set[str] | None = None) -> None:
    """Quantize, in place, every Linear and Embedding whose input width divides into groups.

    `only`: names of stored tensors; a layer is quantized when `<path>.scales` is among them (for
    loading weights that were saved quantized, whatever layers their publisher chose).
    """

    def wanted(path: str, module: nn.Module) -> bool:
        if not isinstance(module, (nn.Linear, nn.Embedding)):
            return False
        if only is not None:
            return f"{path}.scales" in only
        return module.weight.shape[-1] % spec.group_size == 0

    nn.quantize(model, group_size=spec.group_size, bits=spec.bits, class_predicate=wanted)
