"""Turn the protobuf of an ML Program's `main` function into blocks of nodes ready to execute.

Every op is looked up in the op table here, so a program using an op this runtime lacks fails at
load with UnsupportedOp (op name and the package's opset) before anything runs. Const ops are
decoded into the constant table instead of becoming nodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from ...errors import PackageError, UnsupportedOp
from . import shared
from ._proto import MIL_pb2
from .blob import BlobFile
from .ops import OpContext, OpDef, lookup
from .values import TensorType, decode_immediate_tensor, state_tensor_type, tensor_type


@dataclass(frozen=True)
class Binding:
    """One argument of a parameter: a named value, or a literal written inline in the spec."""

    name: str | None = None
    literal: Any = None  # the computing form (mx.array, str)
    host: Any = None  # the decoded form (numpy, str), for host parameters


@dataclass
class Node:
    op: OpDef
    name: str
    params: dict[str, list[Binding]]
    outputs: tuple[str, ...]
    ctx: OpContext
    host_params: dict[str, Any] = field(default_factory=dict)  # static params known at load

    @property
    def references(self) -> list[str]:
        names = [b.name for bindings in self.params.values() for b in bindings if b.name is not None]
        for block in self.ctx.blocks:
            names.extend(block.free_references())
        return names


@dataclass
class Block:
    inputs: tuple[str, ...]
    nodes: list[Node]
    outputs: tuple[str, ...]
    # per node, the values nothing after it reads (program.py drops them then); made on first run
    release_plan: list[tuple[str, ...]] | None = field(default=None, repr=False, compare=False)

    def free_references(self) -> list[str]:
        """Names this block reads that it does not define itself (values from enclosing scopes)."""
        defined = set(self.inputs)
        free: list[str] = []
        for node in self.nodes:
            free.extend(n for n in node.references if n not in defined)
            defined.update(node.outputs)
        free.extend(n for n in self.outputs if n not in defined)
        return free


class Constants:
    """Constant values by name: as MLX arrays for computing, as host values for parameters."""

    def __init__(self) -> None:
        self.device: dict[str, Any] = {}
        self._host: dict[str, Any] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.device

    def add(self, name: str, value: Any, host: Any = None) -> None:
        self.device[name] = to_device(value)
        if host is not None:
            self._host[name] = host

    def host(self, name: str) -> Any:
        if name not in self._host:
            value = self.device[name]
            self._host[name] = [np.array(v) for v in value] if isinstance(value, list) else np.array(value)
        return self._host[name]


def to_device(value: Any) -> Any:
    """A decoded literal as the value ops compute with: mx.array for numbers, str/arrays of str kept."""
    if isinstance(value, np.ndarray) and value.dtype.kind not in "US":
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        return mx.array(value)
    return value


class GraphReader:
    """Reads `main` of one package into blocks; the constants it meets go into `constants`."""

    def __init__(self, package: Path, program: MIL_pb2.Program, weights_dir: Path) -> None:
        self.package = package
        self.program = program
        self.weights_dir = weights_dir
        self.constants = Constants()
        self._blobs: dict[str, BlobFile] = {}
        main = program.functions["main"]
        self.opset_name = main.opset
        self.opset = _opset_number(main.opset)
        # iOS18 states among main's inputs: name -> the tensor type each wraps
        self.state_inputs: dict[str, TensorType | None] = {
            i.name: state_tensor_type(i.type) for i in main.inputs if i.type.WhichOneof("type") == "stateType"
        }

    def main(self) -> tuple[tuple[tuple[str, TensorType | None], ...], Block]:
        main = self.program.functions["main"]
        if main.opset not in main.block_specializations:
            raise PackageError(str(self.package), f"'main' has no block for its opset {main.opset}")
        inputs = tuple((i.name, tensor_type(i.type)) for i in main.inputs)
        return inputs, self._block(main.block_specializations[main.opset], ())

    def _block(self, spec: MIL_pb2.Block, inputs: tuple[str, ...]) -> Block:
        nodes = []
        for op in spec.operations:
            if op.type == "const":
                self._const(op)
            else:
                nodes.append(self._node(op))
        return Block(inputs, nodes, tuple(spec.outputs))

    def _node(self, op: MIL_pb2.Operation) -> Node:
        definition = lookup(op.type)
        if definition is None:
            raise UnsupportedOp(str(self.package), op.type, self.opset_name)
        params = {name: [self._binding(b) for b in arg.arguments] for name, arg in op.inputs.items()}
        for name, value in op.attributes.items():
            if name != "name":  # iOS16 constexpr ops carry their parameters as attributes
                host = self.value(value)
                params[name] = [Binding(literal=to_device(host), host=host)]
        blocks = tuple(self._block(b, tuple(i.name for i in b.inputs)) for b in op.blocks)
        outputs = tuple(o.name for o in op.outputs)
        ctx = OpContext(op.type, self.opset, tuple(tensor_type(o.type) for o in op.outputs), blocks=blocks)
        return Node(definition, _op_name(op), params, outputs, ctx)

    def _binding(self, binding: MIL_pb2.Argument.Binding) -> Binding:
        if binding.WhichOneof("binding") == "name":
            return Binding(name=binding.name)
        host = self.value(binding.value)
        return Binding(literal=to_device(host), host=host)

    def _const(self, op: MIL_pb2.Operation) -> None:
        if "val" not in op.attributes or len(op.outputs) != 1:
            raise PackageError(str(self.package), f"const op '{_op_name(op)}' has no single value")
        value = op.attributes["val"]
        if value.WhichOneof("value") == "blobFileValue":
            # one MLX copy per blob in the process (shared.py); no host view kept, so the weight
            # file's pages are unmapped after load (Constants.host copies the few read on the host)
            self.constants.add(op.outputs[0].name, self._shared_blob(value))
            return
        host = self.value(value)
        if isinstance(host, np.ndarray) and host.dtype.kind in "biuf":  # a literal weight: shared as blobs are
            self.constants.add(op.outputs[0].name, shared.blob_constant(host, to_device), host)
            return
        self.constants.add(op.outputs[0].name, host, host)

    def _shared_blob(self, value: MIL_pb2.Value) -> Any:
        ttype = tensor_type(value.type)
        if ttype is None:
            raise PackageError(str(self.package), "a weight blob with a non-tensor type")
        host = self._blob(value.blobFileValue.fileName).read(value.blobFileValue.offset, ttype)
        return shared.blob_constant(host, to_device)

    def value(self, value: MIL_pb2.Value) -> Any:
        """A literal or blob-file value as numpy (str for a string scalar, list for a list)."""
        ttype = tensor_type(value.type)
        kind = value.WhichOneof("value")
        if kind == "blobFileValue":
            if ttype is None:
                raise PackageError(str(self.package), "a weight blob with a non-tensor type")
            return self._blob(value.blobFileValue.fileName).read(value.blobFileValue.offset, ttype)
        immediate = value.immediateValue
        if immediate.WhichOneof("value") == "tensor" and ttype is not None:
            return decode_immediate_tensor(immediate.tensor, ttype)
        if immediate.WhichOneof("value") == "list":
            return [self.value(v) for v in immediate.list.values]
        if immediate.WhichOneof("value") == "tuple":
            return [self.value(v) for v in immediate.tuple.values]
        raise PackageError(str(self.package), f"unsupported literal of kind {immediate.WhichOneof('value')}")

    def _blob(self, file_name: str) -> BlobFile:
        if file_name not in self._blobs:
            # "@model_path/weights/weight.bin": relative to the folder holding the spec
            relative = file_name.split("@model_path/", 1)[-1]
            path = self.weights_dir.parent / relative
            if not path.is_file():
                raise PackageError(str(self.package), f"weight file {relative} is missing")
            self._blobs[file_name] = BlobFile(path)
        return self._blobs[file_name]


def _op_name(op: MIL_pb2.Operation) -> str:
    name = op.attributes.get("name")
    if name is not None and name.immediateValue.tensor.strings.values:
        return name.immediateValue.tensor.strings.values[0]
    return op.outputs[0].name if op.outputs else op.type


def _opset_number(opset: str) -> int:
    digits = "".join(ch for ch in opset if ch.isdigit())
    return int(digits) if digits else 0
