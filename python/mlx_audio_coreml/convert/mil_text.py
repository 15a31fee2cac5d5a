"""Write an ML Program (the MIL proto of a .mlpackage) as text MIL, the model.mil of a compiled model.

The spelling follows Apple's compiler: `program(1.0)` with `tensor<fp32, []>` scalars and
`tensor<string, []>("...")` op names for iOS16/17 programs (coremlc 34xx, as in coremltools'
ModelRunner add_model.mlmodelc), `program(1.3)` with bare scalars (`fp32`, `string("...")`) from
iOS18. Floats are written exactly, in hexadecimal (`0x1.388p+13`); params and attributes in name
order; a variadic argument as a tuple `(a, b)`. Ops with nested blocks (control flow) are refused.
The reader, coreml/portable/mil_text/, accepts both spellings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..coreml.portable._proto import MIL_pb2
from ..coreml.portable.mil_text.grammar import DTYPE_NAMES, escape_string, format_float, text_opset
from ..coreml.portable.values import decode_immediate_tensor, tensor_type
from ..errors import ConversionFailed

_STAGE = "writing the program as text MIL"
_DT = MIL_pb2.DataType
_LEGACY_OPSETS = frozenset({"CoreML5", "CoreML6", "CoreML7"})  # printed by coremlc as program(1.0)


@dataclass(frozen=True)
class _Style:
    legacy: bool  # scalars as tensor<T, []> (program 1.0) rather than bare T (program 1.3)


def program_text(program: MIL_pb2.Program) -> str:
    """The whole program as text MIL, `main` first; ConversionFailed for what text cannot hold."""
    if not program.functions:
        raise ConversionFailed(_STAGE, "the program has no function")
    names = sorted(program.functions, key=lambda n: (n != "main", n))
    style = _Style(legacy=all(program.functions[n].opset in _LEGACY_OPSETS for n in names))
    lines = [f"program({'1.0' if style.legacy else '1.3'})"]
    if program.attributes:
        lines.append(f"[{_attributes(program.attributes, style)}]")
    lines.append("{")
    for name in names:
        lines.extend(_function(name, program.functions[name], style))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _function(name: str, function: MIL_pb2.Function, style: _Style) -> list[str]:
    if function.opset not in function.block_specializations:
        raise ConversionFailed(_STAGE, f"function '{name}' has no block for its opset {function.opset}")
    params = ", ".join(f"{format_type(i.type, style)} {i.name}" for i in function.inputs)
    attributes = f"[{_attributes(function.attributes, style)}]" if function.attributes else ""
    lines = [f"    func {name}<{text_opset(function.opset)}>({params}){attributes} {{"]
    block = function.block_specializations[function.opset]
    lines.extend(f"        {_operation(op, style)}" for op in block.operations)
    lines.append(f"    }} -> ({', '.join(block.outputs)});")
    return lines


def _operation(op: MIL_pb2.Operation, style: _Style) -> str:
    if op.blocks:
        raise ConversionFailed(
            _STAGE, f"op '{op.type}' has nested blocks (control flow), which are not written as text"
        )
    outputs = ", ".join(f"{format_type(o.type, style)} {o.name}" for o in op.outputs)
    params = ", ".join(
        f"{key} = {_arguments(op.inputs[key], style)}" for key in sorted(op.inputs) if op.inputs[key].arguments
    )
    attributes = f"[{_attributes(op.attributes, style)}]" if op.attributes else ""
    call = f"{op.type}({params}){attributes};"
    return f"{outputs} = {call}" if outputs else call


def _arguments(argument: MIL_pb2.Argument, style: _Style) -> str:
    items = [b.name if b.WhichOneof("binding") == "name" else format_value(b.value, style) for b in argument.arguments]
    return items[0] if len(items) == 1 else f"({', '.join(items)})"


def _attributes(attributes: Any, style: _Style) -> str:
    return ", ".join(f"{key} = {format_value(attributes[key], style)}" for key in sorted(attributes))


def format_type(value_type: MIL_pb2.ValueType, style: _Style) -> str:
    kind = value_type.WhichOneof("type")
    if kind == "tensorType":
        tensor = value_type.tensorType
        dtype = _dtype_name(tensor.dataType)
        if tensor.rank < 0:
            return f"tensor<{dtype}, *>"
        if tensor.rank == 0 and not style.legacy:
            return dtype
        dims = ", ".join(
            str(d.constant.size) if d.WhichOneof("dimension") == "constant" else "?" for d in tensor.dimensions
        )
        return f"tensor<{dtype}, [{dims}]>"
    if kind == "stateType":
        return f"state<{format_type(value_type.stateType.wrappedType, style)}>"
    if kind == "listType":
        length = value_type.listType.length
        size = str(length.constant.size) if length.WhichOneof("dimension") == "constant" else "?"
        return f"list<{format_type(value_type.listType.type, style)}, {size}>"
    if kind == "tupleType":
        return f"tuple<{', '.join(format_type(t, style) for t in value_type.tupleType.types)}>"
    if kind == "dictionaryType":
        d = value_type.dictionaryType
        return f"dict<{format_type(d.keyType, style)}, {format_type(d.valueType, style)}>"
    raise ConversionFailed(_STAGE, f"a value has no type ({kind})")


def _dtype_name(dtype: int) -> str:
    if dtype not in DTYPE_NAMES:
        raise ConversionFailed(_STAGE, f"data type {dtype} has no text MIL name")
    return DTYPE_NAMES[dtype]


def format_value(value: MIL_pb2.Value, style: _Style) -> str:
    """A typed literal: `<type>(<content>)`."""
    type_text = format_type(value.type, style)
    if value.WhichOneof("value") == "blobFileValue":
        blob = value.blobFileValue
        path = _scalar_literal(_DT.STRING, escape_string(blob.fileName), style)
        offset = _scalar_literal(_DT.UINT64, str(blob.offset), style)
        return f"{type_text}(BLOBFILE(path = {path}, offset = {offset}))"
    return f"{type_text}({_content(value, style)})"


def _scalar_literal(dtype: int, content: str, style: _Style) -> str:
    name = DTYPE_NAMES[dtype]
    return f"tensor<{name}, []>({content})" if style.legacy else f"{name}({content})"


def _content(value: MIL_pb2.Value, style: _Style) -> str:
    immediate = value.immediateValue
    kind = immediate.WhichOneof("value")
    if kind == "tensor":
        ttype = tensor_type(value.type)
        if ttype is None or ttype.shape is None or -1 in ttype.shape:
            raise ConversionFailed(_STAGE, "a literal tensor without a fully known shape")
        decoded = decode_immediate_tensor(immediate.tensor, ttype)
        return _nested(np.asarray(decoded), ttype.mil_dtype)
    if kind == "dictionary":
        pairs = (f"{{{_content(p.key, style)}, {_content(p.value, style)}}}" for p in immediate.dictionary.values)
        return "{" + ", ".join(pairs) + "}"
    if kind == "tuple":
        return ", ".join(_content(v, style) for v in immediate.tuple.values)
    if kind is None and value.type.WhichOneof("type") != "tensorType":
        return ""
    raise ConversionFailed(_STAGE, f"literal values of kind {kind} are not written as text")


def _nested(array: np.ndarray, dtype: int) -> str:
    """Row-major values in brackets by dimension; a scalar bare."""
    if array.ndim == 0:
        return _item(array.item(), dtype)
    return "[" + ", ".join(_nested(sub, dtype) for sub in array) + "]"


def _item(item: Any, dtype: int) -> str:
    if dtype == _DT.STRING:
        return escape_string(str(item))
    if dtype == _DT.BOOL:
        return "true" if item else "false"
    if isinstance(item, float):
        return format_float(item)
    return str(int(item))
