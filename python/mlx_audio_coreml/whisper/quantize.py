"""The seed's quantization option: int8 / int4 weights for Whisper's linear and embedding layers.

Two ways, chosen when the model loads:
- MLX's affine group quantization (`mlx.nn.quantize`): each group of `group_size` weights along
  the input axis stores `bits`-bit integers with a float scale and bias. Convolutions and layer
  norms stay in floating point. Used on GPUs, for int4, and wherever oneDNN is missing. MLX has
  no fast quantized CPU kernel: on this x86 CPU such an int8 tiny.en encoder took 11-20 s per
  30 s window against ~0.4 s in float32 (bench/results/model_speed.txt).
- int8 on the CPU with oneDNN installed (`use_host_int8`): the CPU host paths multiply int8
  weights (one scale per output channel) by int8 inputs (one scale per row), as CTranslate2 does
  for faster-whisper's int8; see `host_linear.py`.
Accuracy cost: bench/quantization_accuracy.py (real clips, greedy; bench/results/quantization_accuracy.txt).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mlx.core as mx
import mlx.nn as nn

from ..cpu import host_math, onednn

if TYPE_CHECKING:
    from .model import Whisper

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
    name = str(getattr(value, "name", None)).lower()
    if name in _BITS:  # an enum member named int8 / int4
        return QuantizationSpec(_BITS[name])
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
    """Whether quantized weights make MLX faster here: on a GPU yes, on the CPU only through oneDNN."""
    return mx.default_device() == mx.gpu or host_int8_applies(mx.float32)


def host_int8_applies(dtype: mx.Dtype) -> bool:
    """True when int8 can run as oneDNN int8 products on the CPU host path (see `use_host_int8`)."""
    return onednn.available() and host_math.available(dtype)


def use_host_int8(model: Whisper) -> None:
    """int8 on the CPU: the host paths multiply int8 weights (one scale per output channel) with
    int8 inputs (one scale per row) through oneDNN, as CTranslate2 does. The module keeps its float32
    weights for the steps that stay in MLX (prompt prefill, beams, word alignment)."""
    for part in (model, model.encoder, model.decoder):
        part.host_int8 = True  # a plain attribute (MLX keeps only arrays and containers as parameters)


def quantized_layers(model: Whisper) -> int:
    """How many layers compute quantized: MLX's quantized modules, or every linear layer under host int8."""
    kinds = (nn.QuantizedLinear, nn.QuantizedEmbedding)
    if model.host_int8:
        kinds = (nn.Linear, nn.Embedding)
    return sum(isinstance(m, kinds) for _, m in model.named_modules())
