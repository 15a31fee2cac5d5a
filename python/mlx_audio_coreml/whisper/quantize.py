"""The seed's quantization option: int8 / int4 weights for Whisper's linear and embedding layers.

Uses MLX's affine group quantization (`mlx.nn.quantize`): each group of `group_size` weights along
the input axis stores `bits`-bit integers with a float scale and bias. Convolutions and layer norms
stay in floating point. Accuracy cost (bench/quantization_accuracy.py, 6 real clips, greedy):
int8 changes no token of tiny.en or base; int4 changes ~8% of tokens, with the same word error
rate on those clips (bench/results/quantization_accuracy.txt).

Speed: MLX's quantized matrix products have no fast CPU kernel. On this x86 CPU an int8 tiny.en
encoder took 11-20 s per 30 s window against ~0.9 s in float32 (bench/results/model_speed.txt), so
quantization only pays where MLX runs on a GPU; `quantization_speeds_up()` says whether it does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mlx.core as mx
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


def quantization_speeds_up() -> bool:
    """Whether quantized weights make MLX faster here: on a GPU yes, on the CPU no (see above)."""
    return mx.default_device() == mx.gpu
