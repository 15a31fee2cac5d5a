"""The vocabulary of text MIL (a compiled model's model.mil), shared by its reader and writer.

Apple's compiler prints a program as text: `program(1.0)` (or `1.3`), a `[buildInfo = dict<...>]`
attribute, then `func main<ios17>(tensor<fp16, [1, 80, 3000]> x) { ... } -> (y);`. Each op is
`<type> <name> = <op>(<param> = <value or name>, ...)[name = string("..."), ...];`. Two spellings of
scalar types exist: `tensor<fp32, []>` (program 1.0, coremlc 34xx) and bare `fp32` (program 1.3).
This module names dtypes and opsets both ways; the proto's opset `CoreML<N>` is `ios<N+10>`.
"""

from __future__ import annotations

from .._proto import MIL_pb2

_DT = MIL_pb2.DataType

# text dtype name -> MIL proto dtype
DTYPES: dict[str, int] = {
    "bool": _DT.BOOL,
    "string": _DT.STRING,
    "fp8e4m3fn": _DT.FLOAT8E4M3FN,
    "fp8e5m2": _DT.FLOAT8E5M2,
    "fp16": _DT.FLOAT16,
    "fp32": _DT.FLOAT32,
    "fp64": _DT.FLOAT64,
    "bf16": _DT.BFLOAT16,
    "int4": _DT.INT4,
    "int8": _DT.INT8,
    "int16": _DT.INT16,
    "int32": _DT.INT32,
    "int64": _DT.INT64,
    "uint1": _DT.UINT1,
    "uint2": _DT.UINT2,
    "uint3": _DT.UINT3,
    "uint4": _DT.UINT4,
    "uint6": _DT.UINT6,
    "uint8": _DT.UINT8,
    "uint16": _DT.UINT16,
    "uint32": _DT.UINT32,
    "uint64": _DT.UINT64,
}
DTYPE_NAMES: dict[int, str] = {code: name for name, code in DTYPES.items()}

# words that start a type; a name reference never uses one when followed by '<' or '('
COMPOSITE_TYPES = frozenset({"tensor", "state", "list", "tuple", "dict"})
TYPE_WORDS = COMPOSITE_TYPES | frozenset(DTYPES)

FLOAT_DTYPES = frozenset({_DT.FLOAT16, _DT.FLOAT32, _DT.FLOAT64, _DT.BFLOAT16, _DT.FLOAT8E4M3FN, _DT.FLOAT8E5M2})

# proto opset <-> text opset: iOS15..18 are CoreML5..8, iOS26 is CoreML9
_TEXT_OPSETS: dict[str, str] = {
    "CoreML5": "ios15",
    "CoreML6": "ios16",
    "CoreML7": "ios17",
    "CoreML8": "ios18",
    "CoreML9": "ios26",
}
_PROTO_OPSETS: dict[str, str] = {text: proto for proto, text in _TEXT_OPSETS.items()}


def proto_opset(text: str) -> str | None:
    """`ios17` -> `CoreML7`; a `CoreML<N>` spelling passes through; None for anything else."""
    if text in _PROTO_OPSETS:
        return _PROTO_OPSETS[text]
    if text.startswith("CoreML") and text[len("CoreML") :].isdigit():
        return text
    return None


def text_opset(proto: str) -> str:
    """`CoreML7` -> `ios17`; an opset with no iOS name is written as it is."""
    return _TEXT_OPSETS.get(proto, proto)


def escape_string(value: str) -> str:
    """A string literal with quotes, backslashes and control characters escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    return f'"{escaped}"'


def format_float(value: float) -> str:
    """A float exactly, in the hexadecimal form the compiler prints (`0x1.388p+13`, `-0x1p+0`)."""
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    text = float(value).hex()  # '0x1.3880000000000p+13'
    mantissa, exponent = text.split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}"
