"""Open a compiled model folder (.mlmodelc): its text program, weights and metadata.json.

A compiled ML Program holds `model.mil` (the program as text), `weights/weight.bin` (the blob file
a .mlpackage has too), `metadata.json` (a one-element list: inputSchema, outputSchema,
stateSchema, userDefinedMetadata, ...) and `coremldata.bin` (Core ML's binary description, not
read here). The description comes from metadata.json where it has one, checked against the
program's `main` signature, and from the signature alone when there is none. The parsed program
is kept as a proto (cache.py), so the text is parsed once per content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ....errors import PackageError
from ...runtime import ModelDescription, TensorSpec
from .._proto import MIL_pb2, Model_pb2
from ..package import PackageContents
from ..values import NUMPY_DTYPES, TensorType, state_tensor_type, tensor_type
from .cache import parse_cached

PROGRAM_FILE = "model.mil"
METADATA_FILE = "metadata.json"

# metadata.json "dataType" -> numpy dtype name
_SCHEMA_DTYPES: dict[str, str] = {
    "Float16": "float16",
    "Float32": "float32",
    "Double": "float64",
    "Int32": "int32",
    "Int8": "int8",
}
_DESCRIPTIVE_KEYS = {
    "shortDescription": "shortDescription",
    "author": "author",
    "license": "license",
    "version": "versionString",
}


def is_compiled_model(path: Path) -> bool:
    """Whether `path` is a compiled model folder (it holds a text program)."""
    return (Path(path) / PROGRAM_FILE).is_file()


def read_compiled(path: Path) -> PackageContents:
    """Parse the compiled model at `path`; PackageError (MILTextError for the program) if unusable."""
    path = Path(path)
    program_path = path / PROGRAM_FILE
    if not path.is_dir():
        raise PackageError(str(path), "not a compiled model folder")
    if not program_path.is_file():
        neural_network = any(path.glob("model*.espresso.*"))
        kind = "a neural-network model (model.espresso.*), not an ML Program" if neural_network else "not an ML Program"
        raise PackageError(str(path), f"no {PROGRAM_FILE}: {kind}; the portable runtime runs ML Programs only")
    try:
        text = program_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackageError(str(path), f"cannot read {PROGRAM_FILE}: {exc}") from exc
    program = parse_cached(text, program_path)
    if "main" not in program.functions:
        raise PackageError(str(path), f"the program has no 'main' function (found {sorted(program.functions)})")
    spec = Model_pb2.Model()
    spec.mlProgram.CopyFrom(program)
    metadata = _metadata(path)
    description = _description(path, program.functions["main"], metadata)
    return PackageContents(path, spec, path / "weights", description)


def _metadata(path: Path) -> dict[str, Any]:
    """The model entry of metadata.json ({} when the file is absent)."""
    metadata_path = path / METADATA_FILE
    if not metadata_path.is_file():
        return {}
    try:
        data = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PackageError(str(path), f"{METADATA_FILE} is unreadable: {exc}") from exc
    entry = data[0] if isinstance(data, list) and data else data
    if not isinstance(entry, dict):
        raise PackageError(str(path), f"{METADATA_FILE} holds no model description")
    return _main_function_entry(entry)


def _main_function_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A multifunction model lists schemas per function: take main's (or the default function's)."""
    functions = entry.get("functions")
    if "inputSchema" in entry or not isinstance(functions, list):
        return entry
    wanted = "main" if any(f.get("name") == "main" for f in functions) else entry.get("defaultFunctionName")
    chosen = next((f for f in functions if isinstance(f, dict) and f.get("name") == wanted), {})
    return {**entry, **chosen}


def _description(path: Path, main: MIL_pb2.Function, metadata: Mapping[str, Any]) -> ModelDescription:
    block = main.block_specializations[main.opset]
    signature = {i.name: tensor_type(i.type) for i in main.inputs if i.type.WhichOneof("type") != "stateType"}
    states = {i.name: state_tensor_type(i.type) for i in main.inputs if i.type.WhichOneof("type") == "stateType"}
    produced = {o.name: tensor_type(o.type) for op in block.operations for o in op.outputs}
    produced.update(signature)  # a function may return one of its inputs
    outputs = {name: produced.get(name) for name in block.outputs}
    return ModelDescription(
        _tensors(path, "input", signature, metadata.get("inputSchema")),
        _tensors(path, "output", outputs, metadata.get("outputSchema")),
        _user_metadata(metadata),
        _tensors(path, "state", states, metadata.get("stateSchema")),
    )


def _tensors(
    path: Path, role: str, program_types: Mapping[str, TensorType | None], schema: Any
) -> tuple[TensorSpec, ...]:
    """The tensors in the schema's order, checked against the program; the program's when no schema."""
    if not schema:
        return tuple(_from_program(path, role, name, t) for name, t in program_types.items())
    if not isinstance(schema, list) or not all(isinstance(s, dict) for s in schema):
        raise PackageError(str(path), f"{METADATA_FILE}: the {role} schema is not a list of features")
    names = [s.get("name") for s in schema]
    if sorted(map(str, names)) != sorted(program_types):
        raise PackageError(str(path), f"{METADATA_FILE} lists {role}s {names}, the program has {list(program_types)}")
    return tuple(_from_schema(path, role, s, program_types[s["name"]]) for s in schema)


def _from_program(path: Path, role: str, name: str, ttype: TensorType | None) -> TensorSpec:
    if ttype is None or ttype.shape is None or ttype.mil_dtype not in NUMPY_DTYPES:
        raise PackageError(str(path), f"{role} '{name}' is not a tensor of known rank and numeric type")
    return TensorSpec(name, NUMPY_DTYPES[ttype.mil_dtype].name, ttype.shape)


def _from_schema(path: Path, role: str, feature: Mapping[str, Any], ttype: TensorType | None) -> TensorSpec:
    name = str(feature["name"])
    from_program = _from_program(path, role, name, ttype)
    dtype = _SCHEMA_DTYPES.get(str(feature.get("dataType", "")))
    if dtype is None:
        raise PackageError(str(path), f"{role} '{name}' has an unsupported data type {feature.get('dataType')!r}")
    shape = from_program.shape
    if str(feature.get("hasShapeFlexibility", "0")) != "1" and feature.get("shape"):
        shape = _schema_shape(path, name, feature["shape"])
    return TensorSpec(name, dtype, shape)


def _schema_shape(path: Path, name: str, text: Any) -> tuple[int, ...]:
    try:
        dims = json.loads(text) if isinstance(text, str) else text
        return tuple(int(d) for d in dims)
    except (ValueError, TypeError) as exc:
        raise PackageError(str(path), f"'{name}' has an unreadable shape {text!r} in {METADATA_FILE}") from exc


def _user_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    user = metadata.get("userDefinedMetadata") or {}
    found = {str(k): str(v) for k, v in user.items()} if isinstance(user, dict) else {}
    for key, name in _DESCRIPTIVE_KEYS.items():
        if metadata.get(key):
            found[name] = str(metadata[key])
    return found
