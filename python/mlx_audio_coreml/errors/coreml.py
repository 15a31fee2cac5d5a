"""Core ML runtimes, the native shim, tensor checks, model state, packages, and CPU kernels."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError, int_shape


class CoreMLError(MlxAudioCoreMLError):
    """A Core ML runtime (apple, coremltools or portable) failed."""


class CoreMLRuntimeUnavailable(CoreMLError):
    """A runtime cannot run on this machine; `reason` says why in words fit for a user."""

    def __init__(self, runtime: str, reason: str) -> None:
        self.runtime = runtime
        self.reason = reason
        super().__init__(f"Core ML runtime '{runtime}' unavailable: {reason}")


class NativeError(CoreMLError):
    """A status other than OK from the Swift shim, with the shim's own message."""

    def __init__(self, status: int, message: str, function: str = "") -> None:
        self.status = int(status)
        self.message = message
        self.function = function
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{message} (status {self.status})")


class NativeLibraryUnavailable(CoreMLError):
    """The shim is not built here, or could not be loaded."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"native library unavailable: {reason}")


class ABIVersionMismatch(CoreMLError):
    """The shim on disk speaks another version of the C ABI than this Python code."""

    def __init__(self, expected: int, got: int, path: str = "") -> None:
        self.expected = int(expected)
        self.got = int(got)
        self.path = path
        super().__init__(f"native ABI version mismatch: expected {expected}, got {got} ({path})")


class ModelLoadFailed(CoreMLError):
    """Compiling or loading a Core ML package failed."""

    def __init__(self, path: str, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"could not load {path}: {message}")


class ANECompilationError(CoreMLError):
    """The Neural Engine compile (Core ML compile + load + specialization) did not complete."""


class ANECompilationTimeout(ANECompilationError):
    """The seed's `ANECompilationError.timeout`: the compile outlasted `timeout_s`."""

    def __init__(self, timeout_s: float, stage: str = "") -> None:
        self.timeout_s = float(timeout_s)
        self.stage = stage
        at = f" during {stage}" if stage else ""
        super().__init__(f"Neural Engine compilation timed out after {self.timeout_s:g} s{at}")


class ANECompilationCancelled(ANECompilationError):
    """The compile was cancelled by the caller; the native work is abandoned, not stopped."""

    def __init__(self, stage: str = "") -> None:
        self.stage = stage
        super().__init__("Neural Engine compilation cancelled" + (f" during {stage}" if stage else ""))


class TensorValidationError(CoreMLError):
    """A tensor handed to predict does not fit the model's description; nothing was written."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"tensor '{name}': {message}")


class TensorShapeMismatch(TensorValidationError):
    def __init__(self, name: str, expected: Sequence[int], got: Sequence[int]) -> None:
        self.expected = int_shape(expected)
        self.got = int_shape(got)
        super().__init__(name, f"shape mismatch: expected {self.expected}, got {self.got}")


class TensorDtypeMismatch(TensorValidationError):
    def __init__(self, name: str, expected: str, got: str) -> None:
        self.expected = expected
        self.got = got
        super().__init__(name, f"dtype mismatch: expected {expected}, got {got}")


class TensorLayoutError(TensorValidationError):
    """Strides negative, overlapping or not matching the buffer; or a non-contiguous array."""


class TensorBufferTooSmall(TensorValidationError):
    def __init__(self, name: str, needed: int, got: int) -> None:
        self.needed = int(needed)
        self.got = int(got)
        super().__init__(name, f"buffer too small: needs {needed} bytes, has {got}")


class TensorNullPointer(TensorValidationError):
    """A descriptor's data pointer was NULL (only raw descriptors can send one)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "data pointer is NULL")


class UnknownTensorName(TensorValidationError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.known = list(known)
        super().__init__(name, f"unknown name; the model has {self.known}")


class MissingTensor(TensorValidationError):
    def __init__(self, name: str) -> None:
        super().__init__(name, "required input is missing")


class StateError(CoreMLError):
    """A stateful model's prediction got no state, or a state it cannot use; nothing was run."""


class StateRequired(StateError):
    """A stateful model was predicted without `state=`: its states must come from `make_state()`."""

    def __init__(self, states: Sequence[str]) -> None:
        self.states = list(states)
        super().__init__(f"the model is stateful (states {self.states}): pass state=model.make_state()")


class StateMismatch(StateError):
    """The state given to predict was made by another model, or the model has no states."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"unusable state: {message}")


class PredictionFailed(CoreMLError):
    """The runtime accepted the tensors but the prediction itself failed."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(f"prediction failed: {message}")


class NonFiniteOutput(PredictionFailed):
    """A prediction finished but an output holds NaN or Inf (e.g. a broken Neural Engine compile)."""

    def __init__(self, output: str) -> None:
        self.output = output
        super().__init__(f"output '{output}' holds NaN or Inf")


class PackageError(CoreMLError):
    """A .mlpackage is unreadable, corrupt, or uses what the portable runtime cannot run."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class UnknownFunction(PackageError):
    """A load named a function the package lacks (a multi-function package's functions are, e.g., a
    vocoder's frame buckets). `available` lists the functions it has (`("main",)` for a one-function
    package), or is None when the runtime could not list them; `detail` is then the runtime's own words."""

    def __init__(self, path: str, function: str, available: Sequence[str] | None, detail: str = "") -> None:
        self.function = function
        self.available = None if available is None else tuple(available)
        self.detail = detail
        has = f"the package has {list(self.available)}" if self.available is not None else detail
        super().__init__(path, f"no function '{function}'" + (f" ({has})" if has else ""))


class UnsupportedOp(PackageError):
    """The ML Program uses an op the portable runtime does not implement (raised at load)."""

    def __init__(self, path: str, op: str, opset: str) -> None:
        self.op = op
        self.opset = opset
        super().__init__(path, f"unsupported op '{op}' (opset {opset})")


class MILTextError(PackageError):
    """A compiled model's text MIL program (model.mil) is malformed: where, and what was expected."""

    def __init__(self, path: str, line: int, column: int, reason: str) -> None:
        self.line = line
        self.column = column
        super().__init__(path, f"model.mil line {line}, column {column}: {reason}")
        self.reason = reason


class UnknownEncoderLayout(CoreMLError):
    """A package's inputs and outputs match none of the encoder layouts in whisper/encoder_layouts.py."""

    def __init__(self, found: str, reason: str) -> None:
        self.found = found  # the package's tensors, e.g. "inputs: mel [1, 80, 3000] float16; outputs: ..."
        self.reason = reason
        super().__init__(f"not a known Whisper encoder layout ({found}): {reason}")


class CPUKernelFailed(MlxAudioCoreMLError):
    """A CPU kernel library (oneDNN, or our libmacb_cpu) returned an error status for a call."""

    def __init__(self, function: str, status: int, meaning: str = "1: out of memory, 2: invalid arguments") -> None:
        self.function, self.status = function, status
        super().__init__(f"{function} failed with status {status} ({meaning})")
