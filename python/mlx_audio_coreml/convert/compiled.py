"""Write a .mlpackage as a compiled-model folder (.mlmodelc) that the portable runtime loads.

The folder holds what Apple's compiler puts there for an ML Program: `model.mil` (the program as
text, convert/mil_text.py), the package's weight files under `weights/` unchanged (a compiled
model keeps the package's blob file and offsets), and `metadata.json` in the compiler's schema.
There is no `coremldata.bin` (Core ML's own binary description): Core ML itself needs the real
compiler's output; this folder serves the portable runtime and tests of the .mlmodelc path.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..coreml.portable._proto import MIL_pb2, Model_pb2
from ..coreml.portable.mil_text.grammar import text_opset
from ..coreml.portable.package import read_package
from ..coreml.runtime import ModelDescription, TensorSpec
from ..errors import ConversionDestinationExists, ConversionFailed
from ..store.staging import staged_path
from .mil_text import program_text

_STAGE = "writing the compiled model folder"
_MODEL_PATH = "@model_path/"
_SCHEMA_DTYPES = {"float16": "Float16", "float32": "Float32", "float64": "Double", "int32": "Int32", "int8": "Int8"}
_DESCRIPTIVE = {
    "shortDescription": "shortDescription",
    "author": "author",
    "license": "license",
    "versionString": "version",
}


def write_compiled(package: Path, destination: Path, *, overwrite: bool = False) -> Path:
    """Write `package` (.mlpackage) as the compiled-model folder `destination` (.mlmodelc), atomically."""
    contents = read_package(Path(package))
    program = contents.program
    text = program_text(program)
    destination = Path(destination)
    try:
        with staged_path(destination, overwrite=overwrite) as built:
            built.mkdir()
            (built / "model.mil").write_text(text, encoding="utf-8")
            for relative in _weight_files(program):
                target = built / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(contents.weights_dir.parent / relative, target)
            metadata = compiled_metadata(contents.spec, contents.description, destination.stem)
            (built / "metadata.json").write_text(json.dumps([metadata], indent=2, ensure_ascii=False) + "\n")
    except FileExistsError as exc:
        raise ConversionDestinationExists(str(destination)) from exc
    except OSError as exc:
        raise ConversionFailed(_STAGE, str(exc), exc) from exc
    return destination


def _weight_files(program: MIL_pb2.Program) -> list[str]:
    """The blob files the program reads, relative to the model folder (`weights/weight.bin`)."""
    found = set()
    for value in _values(program):
        if value.WhichOneof("value") == "blobFileValue":
            name = value.blobFileValue.fileName
            relative = name[len(_MODEL_PATH) :] if name.startswith(_MODEL_PATH) else name
            if not relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
                raise ConversionFailed(_STAGE, f"weight file {name!r} is not inside the model folder")
            found.add(relative)
    return sorted(found)


def _values(program: MIL_pb2.Program) -> Iterator[MIL_pb2.Value]:
    for function in program.functions.values():
        for block in function.block_specializations.values():
            yield from _block_values(block)


def _block_values(block: MIL_pb2.Block) -> Iterator[MIL_pb2.Value]:
    for op in block.operations:
        yield from op.attributes.values()
        for argument in op.inputs.values():
            yield from (b.value for b in argument.arguments if b.WhichOneof("binding") == "value")
        for inner in op.blocks:
            yield from _block_values(inner)


def compiled_metadata(spec: Model_pb2.Model, description: ModelDescription, class_name: str) -> dict[str, Any]:
    """metadata.json's model entry, in the keys Apple's compiler writes (those we can know)."""
    user = {k: v for k, v in description.metadata.items() if k not in _DESCRIPTIVE}
    shown = {_DESCRIPTIVE[k]: v for k, v in description.metadata.items() if k in _DESCRIPTIVE}
    feature_notes = {f.name: f.shortDescription for f in [*spec.description.input, *spec.description.output]}
    return {
        "metadataOutputVersion": "3.0",
        "specificationVersion": spec.specificationVersion,
        "modelType": {"name": "MLModelType_mlProgram"},
        "mlProgramOperationTypeHistogram": _histogram(spec.mlProgram),
        "inputSchema": [_feature(t, feature_notes.get(t.name, "")) for t in description.inputs],
        "outputSchema": [_feature(t, feature_notes.get(t.name, "")) for t in description.outputs],
        "stateSchema": [_feature(t, "", kind="State") for t in description.states],
        "userDefinedMetadata": user,
        "isUpdatable": "0",
        "modelParameters": [],
        "generatedClassName": class_name,
        "method": "predict",
        **shown,
    }


def _feature(spec: TensorSpec, note: str, kind: str = "MultiArray") -> dict[str, str]:
    dtype = _SCHEMA_DTYPES.get(spec.dtype)
    if dtype is None:
        raise ConversionFailed(_STAGE, f"'{spec.name}' has a data type ({spec.dtype}) Core ML features cannot hold")
    flexible = any(d < 0 for d in spec.shape)
    dims = " × ".join(str(d) for d in spec.shape)
    return {
        "hasShapeFlexibility": "1" if flexible else "0",
        "isOptional": "0",
        "dataType": dtype,
        "formattedType": f"{kind} ({dtype} {dims})" if dims else f"{kind} ({dtype})",
        "shortDescription": note,
        "shape": "[" + ", ".join(str(d) for d in spec.shape) + "]",
        "name": spec.name,
        "type": kind,
    }


def _histogram(program: MIL_pb2.Program) -> dict[str, int]:
    """Op counts keyed `Ios17.conv`, as the compiler reports them."""
    counts: Counter[str] = Counter()
    for function in program.functions.values():
        opset = text_opset(function.opset).capitalize()
        block = function.block_specializations.get(function.opset)
        for op in block.operations if block is not None else ():
            counts[f"{opset}.{op.type}"] += 1
    return dict(sorted(counts.items()))
