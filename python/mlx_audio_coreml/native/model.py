"""A model loaded by the shim (macb_model): its description, and predictions over numpy memory.

`predict` takes arrays by name and writes every output into a caller buffer (given or allocated
here); it reports which outputs Core ML wrote in place and which inputs needed a copy.
`predict_descriptors` sends raw descriptors unchecked by Python, so tests can reach the shim's own
checks. Predictions on one model are serialized by the shim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..coreml.runtime import ComputeUnits, ModelDescription, PredictResult, TensorSpec
from ..errors import ModelNotLoaded
from . import abi
from .binding import HandleGuard, NativeCall, NativeLibrary, c_text, ffi, new_fault, raise_for_tensors, tensor_array
from .tensors import TensorDescriptor, descriptor_for_input, output_buffer

_COPIED = abi.CONSTANTS["MACB_TENSOR_COPIED"]
_IN_PLACE = abi.CONSTANTS["MACB_TENSOR_WRITTEN_IN_PLACE"]


@dataclass(frozen=True)
class DescriptorReport:
    inputs_copied: tuple[bool, ...]  # per input descriptor: a conversion copy was made
    outputs_in_place: tuple[bool, ...]  # per output descriptor: Core ML wrote into the buffer


@dataclass(frozen=True)
class ModelInfo:
    compute_units: ComputeUnits
    uses_output_backings: bool  # False after a prediction with backings failed once
    predictions: int


class NativeModel:
    """Close it when done (or use it as a context manager); the shim unloads it with its last handle."""

    def __init__(self, lib: NativeLibrary, handle: Any, path: Path) -> None:
        self.library = lib
        self.path = path
        self._guard = HandleGuard(lambda: ModelNotLoaded("Core ML"))
        self._guard.set(handle)
        self.description = self._describe()

    def _describe(self) -> ModelDescription:
        raw = self.library.raw
        count = ffi.new("int32_t *")
        feature = ffi.new("macb_feature *", {"struct_size": ffi.sizeof("macb_feature")})
        roles: list[tuple[TensorSpec, ...]] = []
        with self._guard.use() as handle:
            for role in (abi.ROLE_INPUT, abi.ROLE_OUTPUT):
                NativeCall("macb_model_feature_count").check(raw.macb_model_feature_count(handle, role, count))
                specs = []
                for index in range(count[0]):
                    NativeCall("macb_model_feature").check(raw.macb_model_feature(handle, role, index, feature))
                    shape = tuple(int(v) for v in feature.shape[0 : feature.rank])
                    specs.append(TensorSpec(c_text(feature.name), abi.DTYPE_NAMES[feature.dtype], shape))
                roles.append(tuple(specs))
            metadata = self._metadata(handle)
        return ModelDescription(inputs=roles[0], outputs=roles[1], metadata=metadata)

    def _metadata(self, handle: Any) -> dict[str, str]:
        raw = self.library.raw
        count = ffi.new("int32_t *")
        key, value = ffi.new("const char **"), ffi.new("const char **")
        NativeCall("macb_model_metadata_count").check(raw.macb_model_metadata_count(handle, count))
        found = {}
        for index in range(count[0]):
            NativeCall("macb_model_metadata").check(raw.macb_model_metadata(handle, index, key, value))
            found[c_text(key[0])] = c_text(value[0])
        return found

    def info(self) -> ModelInfo:
        out = ffi.new("macb_model_info *", {"struct_size": ffi.sizeof("macb_model_info")})
        with self._guard.use() as handle:
            NativeCall("macb_model_info_get").check(self.library.raw.macb_model_info_get(handle, out))
        return ModelInfo(ComputeUnits(out.compute_units), bool(out.uses_output_backings), int(out.predictions))

    def predict(self, inputs: Mapping[str, Any], outputs: Mapping[str, np.ndarray] | None = None) -> PredictResult:
        """Runs the model; every output lands in a caller buffer (given, or allocated here)."""
        in_descs: list[TensorDescriptor] = []
        copies: set[str] = set()
        for name, value in inputs.items():
            desc, copied = descriptor_for_input(self.description.input(name), name, value)
            in_descs.append(desc)
            if copied:
                copies.add(name)
        given = dict(outputs or {})
        buffers = {
            spec.name: output_buffer(spec, spec.name, given.pop(spec.name, None)) for spec in self.description.outputs
        }
        buffers.update({name: output_buffer(None, name, value) for name, value in given.items()})
        out_descs = [TensorDescriptor.of(name, array, writable=True) for name, array in buffers.items()]
        report = self.predict_descriptors(in_descs, out_descs)
        copies.update(d.name for d, copied in zip(in_descs, report.inputs_copied) if copied and d.name)
        in_place = frozenset(d.name for d, done in zip(out_descs, report.outputs_in_place) if done and d.name)
        return PredictResult(outputs=buffers, written_in_place=in_place, input_copies=frozenset(copies))

    def predict_descriptors(
        self, inputs: Sequence[TensorDescriptor], outputs: Sequence[TensorDescriptor]
    ) -> DescriptorReport:
        """One macb_predict with raw descriptors (no Python-side checks beyond rank)."""
        keep: list[Any] = []  # names and buffers referenced by the structs, alive for the call
        in_array, out_array = tensor_array(inputs, keep), tensor_array(outputs, keep)
        fault = new_fault()
        call = NativeCall("macb_predict")
        with self._guard.use() as handle:
            status = self.library.raw.macb_predict(
                handle, in_array, len(inputs), out_array, len(outputs), fault, call.msg, abi.MESSAGE_CAPACITY
            )
        raise_for_tensors(call, status, fault, inputs, outputs, self.description.inputs, self.description.outputs)
        return DescriptorReport(
            inputs_copied=tuple(bool(in_array[i].flags & _COPIED) for i in range(len(inputs))),
            outputs_in_place=tuple(bool(out_array[i].flags & _IN_PLACE) for i in range(len(outputs))),
        )

    def close(self) -> None:
        self._guard.close(self.library.raw.macb_model_free)

    def __enter__(self) -> NativeModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        guard = getattr(self, "_guard", None)
        if guard is not None and guard.is_open:
            self.close()
