"""Open a .mlpackage: Manifest.json, the model spec protobuf, the weights folder, the description.
(`read_model` also opens a compiled .mlmodelc, through mil_text/.)

Only ML Programs are read (spec.mlProgram); a neural-network or pipeline spec is a PackageError, and
so is a package without Manifest.json (Core ML refuses those). Every weight blob the program names
is checked when the graph is read (blob.py: sentinel, storage type, size against the declared
shape, data inside the file), so a damaged package fails at load, not with garbage at run time.
The description is taken from `spec.description`, with tensor shapes from the program's `main`
function where the description leaves them open (-1 marks a flexible dimension). A stateful
model's states (iOS18 `StateType`, listed apart from the inputs) become `description.states`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from ...errors import PackageError, UnknownFunction
from ..runtime import ModelDescription, TensorSpec
from ._proto import FeatureTypes_pb2, MIL_pb2, Model_pb2
from .values import NUMPY_DTYPES, tensor_type

_ARRAY = FeatureTypes_pb2.ArrayFeatureType
_FEATURE_DTYPES: dict[int, str] = {
    _ARRAY.FLOAT32: "float32",
    _ARRAY.FLOAT16: "float16",
    _ARRAY.DOUBLE: "float64",
    _ARRAY.INT32: "int32",
    _ARRAY.INT8: "int8",
}


@dataclass(frozen=True)
class PackageContents:
    path: Path
    spec: Model_pb2.Model
    weights_dir: Path
    description: ModelDescription

    @property
    def program(self) -> MIL_pb2.Program:
        return self.spec.mlProgram


def read_package(path: Path, function: str | None = None) -> PackageContents:
    """Parse the package at `path`; PackageError for anything missing, unreadable or not an ML Program.
    A multi-function package (specification 9) is read as its function `function` (default: the
    package's default function), presented as `main`; UnknownFunction for a name it lacks."""
    path = Path(path)
    spec, spec_path = _read_spec(path)
    if spec.description.functions:
        spec = _function_view(path, spec, function or spec.description.defaultFunctionName)
    elif function not in (None, "main"):
        raise UnknownFunction(str(path), function, ("main",))
    if "main" not in spec.mlProgram.functions:
        raise PackageError(str(path), "the ML Program has no 'main' function")
    description = _description(path, spec)
    return PackageContents(path, spec, spec_path.parent / "weights", description)


def function_names(path: Path) -> tuple[str, ...]:
    """The functions a .mlpackage offers, in the order saved: a multi-function package's names, or
    `("main",)` for a package of one function. PackageError when it is not a readable ML Program."""
    spec, _ = _read_spec(Path(path))
    return tuple(f.name for f in spec.description.functions) or ("main",)


def _read_spec(path: Path) -> tuple[Model_pb2.Model, Path]:
    """The package's root model spec (an ML Program) and where it was read from."""
    if not path.is_dir():
        raise PackageError(str(path), "not a .mlpackage folder")
    spec_path = _root_spec_path(path)
    try:
        data = spec_path.read_bytes()
    except OSError as exc:
        raise PackageError(str(path), f"cannot read the model spec {spec_path.name}: {exc}") from exc
    spec = Model_pb2.Model()
    try:
        spec.ParseFromString(data)
    except DecodeError as exc:
        raise PackageError(str(path), f"the model spec is not a valid protobuf: {exc}") from exc
    if spec.WhichOneof("Type") != "mlProgram":
        raise PackageError(str(path), f"not an ML Program (spec type {spec.WhichOneof('Type')})")
    return spec, spec_path


def read_model(path: Path, function: str | None = None) -> PackageContents:
    """A .mlpackage (its function `function` when it has several), or a compiled .mlmodelc (its text
    program, read by mil_text/)."""
    from .mil_text import is_compiled_model, read_compiled  # mil_text builds on this module

    compiled = Path(path).suffix == ".mlmodelc" or is_compiled_model(path)
    if compiled and function not in (None, "main"):
        raise PackageError(str(path), f"function '{function}': only .mlpackage functions are read by name")
    return read_compiled(path) if compiled else read_package(path, function)


def _function_view(path: Path, spec: Model_pb2.Model, function: str) -> Model_pb2.Model:
    """A one-function copy of a multi-function spec: `function`'s program as `main`, its description
    as the model's (the weights file is shared, so the blob offsets stay valid)."""
    described = {f.name: f for f in spec.description.functions}
    if function not in described or function not in spec.mlProgram.functions:
        raise UnknownFunction(str(path), function, [f.name for f in spec.description.functions])
    view = Model_pb2.Model()
    view.CopyFrom(spec)
    chosen = view.mlProgram.functions[function]
    main = MIL_pb2.Function()
    main.CopyFrom(chosen)
    view.mlProgram.functions.clear()
    view.mlProgram.functions["main"].CopyFrom(main)
    for field in ("input", "output", "state"):
        getattr(view.description, field).extend(getattr(described[function], field))
    del view.description.functions[:]
    return view


def _root_spec_path(package: Path) -> Path:
    """The spec file Manifest.json names as root. Core ML refuses a package without a manifest, so
    the portable runtime does too: a package that runs here must run on a Mac."""
    manifest = package / "Manifest.json"
    if not manifest.is_file():
        raise PackageError(
            str(package),
            "no Manifest.json: not a complete .mlpackage (Core ML would refuse it); save or copy the package again",
        )
    try:
        info = json.loads(manifest.read_text())
        root = info["itemInfoEntries"][info["rootModelIdentifier"]]
        relative = str(root["path"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PackageError(str(package), f"Manifest.json is unreadable or names no root model: {exc}") from exc
    data = (package / "Data").resolve()
    spec_path = (data / relative).resolve()
    if data not in spec_path.parents:
        raise PackageError(str(package), f"Manifest.json names a root model outside the package: {relative}")
    if not spec_path.is_file():
        raise PackageError(str(package), f"Manifest.json names Data/{relative}, which is missing")
    return spec_path


def _description(path: Path, spec: Model_pb2.Model) -> ModelDescription:
    main = spec.mlProgram.functions["main"]
    program_inputs = {i.name: tensor_type(i.type) for i in main.inputs}
    block = main.block_specializations[main.opset]
    outputs_by_name = {o.name: tensor_type(o.type) for op in block.operations for o in op.outputs}
    inputs = tuple(_feature(path, f, program_inputs.get(f.name)) for f in spec.description.input)
    outputs = tuple(_feature(path, f, outputs_by_name.get(f.name)) for f in spec.description.output)
    states = tuple(_state(path, f) for f in spec.description.state)
    return ModelDescription(inputs, outputs, _metadata(spec.description.metadata), states)


def _state(path: Path, feature: Model_pb2.FeatureDescription) -> TensorSpec:
    if feature.type.WhichOneof("Type") != "stateType":
        raise PackageError(str(path), f"state '{feature.name}' is not declared as a StateType")
    state = feature.type.stateType
    if state.WhichOneof("Type") != "arrayType":
        raise PackageError(str(path), f"state '{feature.name}' wraps a {state.WhichOneof('Type')}, not an array")
    dtype = _FEATURE_DTYPES.get(state.arrayType.dataType)
    if dtype is None:
        kind = state.arrayType.dataType
        raise PackageError(str(path), f"state '{feature.name}' has an unsupported array type {kind}")
    return TensorSpec(feature.name, dtype, tuple(int(s) for s in state.arrayType.shape))


def _feature(path: Path, feature: Model_pb2.FeatureDescription, program_type) -> TensorSpec:
    kind = feature.type.WhichOneof("Type")
    if kind == "stateType":
        raise PackageError(str(path), f"'{feature.name}' is a state listed among the inputs or outputs")
    if kind != "multiArrayType":
        raise PackageError(str(path), f"'{feature.name}' is a {kind}: only multi-array tensors are supported")
    array = feature.type.multiArrayType
    dtype = _FEATURE_DTYPES.get(array.dataType)
    if dtype is None and program_type is not None:
        dtype = NUMPY_DTYPES[program_type.mil_dtype].name
    if dtype is None:
        raise PackageError(str(path), f"'{feature.name}' has an unsupported array type {array.dataType}")
    shape = tuple(int(s) for s in array.shape)
    flexible = array.WhichOneof("ShapeFlexibility") is not None
    if program_type is not None and program_type.shape is not None and (flexible or not shape):
        shape = program_type.shape
    return TensorSpec(feature.name, dtype, shape)


def _metadata(metadata: Model_pb2.Metadata) -> dict[str, str]:
    found = dict(metadata.userDefined)
    for key in ("shortDescription", "versionString", "author", "license"):
        value = getattr(metadata, key)
        if value:
            found[key] = value
    return found
