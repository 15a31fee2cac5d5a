"""The dlopened shim: finding and loading the library, runtime facts, and the cffi structs.

The only place (with jobs.py and model.py) that calls into cffi. A library is loaded on first use,
checked with macb_abi_version() and kept for the life of the process: never dlclosed, because a
load job abandoned by cancel or timeout keeps running inside it.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cffi

from .. import config
from ..coreml.runtime import ComputeUnits, TensorSpec
from ..errors import (
    ABIVersionMismatch,
    NativeError,
    NativeLibraryUnavailable,
    TensorLayoutError,
)
from . import abi
from .tensors import TensorDescriptor

if TYPE_CHECKING:
    from .jobs import LoadJob

ENV_LIBRARY = config.NATIVE_LIB
POLL_INTERVAL_S = 0.05  # longest single native wait: Ctrl-C is seen at least this often
_LIBRARY_NAME = "libmacb.dylib" if sys.platform == "darwin" else "libmacb.so"

# The header's declarations; tests use it to build raw structs. Typed Any on purpose: the structs'
# fields and the library's functions come from CDEF at run time, so cffi's stubs cannot name them.
ffi: Any = cffi.FFI()
ffi.cdef(abi.CDEF)  # parsing only; no library is opened here
_libraries: dict[str, NativeLibrary] = {}  # by resolved path; never dlclosed
_libraries_lock = threading.Lock()


def default_library_path() -> Path:
    """$MLX_AUDIO_COREML_NATIVE_LIB when set, else the library built next to this module."""
    override = config.setting(ENV_LIBRARY)
    return Path(override) if override else Path(__file__).parent.parent / "_native" / _LIBRARY_NAME


def library(path: str | os.PathLike[str] | None = None) -> NativeLibrary:
    """The loaded library at `path` (default: default_library_path()), loading it on first use."""
    resolved = Path(path) if path is not None else default_library_path()
    key = str(resolved.resolve()) if resolved.exists() else str(resolved)
    with _libraries_lock:
        if key not in _libraries:
            _libraries[key] = NativeLibrary(Path(key))
        return _libraries[key]


@dataclass(frozen=True)
class LibraryStatus:
    """What `info` says about the shim: state is "loaded", "not built", "missing", "unloadable"
    or "abi mismatch"."""

    state: str
    path: str
    detail: str = ""
    build_info: str = ""

    @property
    def loaded(self) -> bool:
        return self.state == "loaded"


def library_status(path: str | os.PathLike[str] | None = None) -> LibraryStatus:
    """Never raises: tries to load the library and says what happened."""
    target = Path(path) if path is not None else default_library_path()
    if not target.exists():
        explicit = path is not None or ENV_LIBRARY in os.environ
        if explicit:
            return LibraryStatus("missing", str(target), "no library at this path")
        return LibraryStatus("not built", str(target), "no Swift compiler when the package was built")
    try:
        lib = library(target)
    except ABIVersionMismatch as exc:
        return LibraryStatus("abi mismatch", str(target), str(exc))
    except NativeLibraryUnavailable as exc:
        return LibraryStatus("unloadable", str(target), exc.reason)
    return LibraryStatus("loaded", str(lib.path), build_info=lib.build_info)


@dataclass(frozen=True)
class RuntimeFacts:
    """macb_runtime_facts: what the shim knows about Core ML on this machine."""

    coreml_available: bool
    neural_engine_available: bool | None  # None: unknown
    neural_engine_cores: int  # 0: unknown
    running_in_vm: bool | None
    os_name: str
    os_version: tuple[int, int, int]
    backend: str  # "coreml", "coreml-standin" (tests only: no real Core ML) or "none"
    note: str  # why Core ML or the Neural Engine is unavailable

    @property
    def is_standin(self) -> bool:
        return self.backend == "coreml-standin"


def runtime_facts(path: str | os.PathLike[str] | None = None) -> RuntimeFacts:
    return library(path).runtime_facts()


def _tristate(value: int) -> bool | None:
    return None if value < 0 else bool(value)


def c_text(chars: Any) -> str:
    return ffi.string(chars).decode("utf-8", "replace")


class NativeCall:
    """One native call's message buffer; `check` raises the mapped error for a failed status."""

    def __init__(self, function: str) -> None:
        self.function = function
        self.msg = ffi.new("char[]", abi.MESSAGE_CAPACITY)

    @property
    def message(self) -> str:
        return c_text(self.msg)

    def native_error(self, status: int) -> NativeError:
        return NativeError(status, self.message, self.function)

    def check(self, status: int, **context: str) -> None:
        if status != abi.OK:
            raise abi.status_error(status, self.message, **context) from self.native_error(status)


class NativeLibrary:
    """One dlopened shim. Create through `library()`, which keeps one per path."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise NativeLibraryUnavailable(f"no native library at {path}")
        try:
            # RTLD_NODELETE: "never dlclosed" must hold at interpreter shutdown too, when cffi
            # frees its handle and dlcloses. Unmapping the shim then, under the Dispatch threads
            # of a compile abandoned by cancel, crashed the process on exit (a core file showed
            # them waiting on futexes inside the unmapped library; rc 139 after all tests passed).
            self._lib = ffi.dlopen(str(path), ffi.RTLD_NOW | ffi.RTLD_LOCAL | ffi.RTLD_NODELETE)
        except OSError as exc:
            raise NativeLibraryUnavailable(f"cannot load {path}: {exc}") from exc
        self.path = path
        got = int(self._lib.macb_abi_version())
        if got != abi.ABI_VERSION:
            raise ABIVersionMismatch(abi.ABI_VERSION, got, str(path))
        self.build_info = c_text(self._lib.macb_build_info())
        # One trampoline for every job: user_data carries the job's stage queue (see LoadJob).
        self.stage_callback = ffi.callback("void(void *, int32_t)", _push_stage)

    @property
    def raw(self) -> Any:
        """The cffi library object (jobs.py, model.py, and tests calling C functions directly)."""
        return self._lib

    def runtime_facts(self) -> RuntimeFacts:
        out = ffi.new("macb_runtime_facts *", {"struct_size": ffi.sizeof("macb_runtime_facts")})
        call = NativeCall("macb_runtime_facts_get")
        call.check(self._lib.macb_runtime_facts_get(out, call.msg, abi.MESSAGE_CAPACITY))
        return RuntimeFacts(
            coreml_available=bool(out.coreml_available),
            neural_engine_available=_tristate(out.neural_engine_available),
            neural_engine_cores=int(out.neural_engine_cores),
            running_in_vm=_tristate(out.running_in_vm),
            os_name=c_text(out.os_name),
            os_version=(int(out.os_version[0]), int(out.os_version[1]), int(out.os_version[2])),
            backend=c_text(out.backend),
            note=c_text(out.note),
        )

    def begin_load(
        self,
        model_path: str | os.PathLike[str],
        compiled_path: str | os.PathLike[str] | None,
        compute_units: ComputeUnits = ComputeUnits.ALL,
        *,
        prewarm: bool = True,
        function: str | None = None,
    ) -> LoadJob:
        """Starts (or adopts) the background load of `model_path` (its function `function`, for a
        multi-function model); see macb_load_begin."""
        from .jobs import LoadJob  # jobs.py builds on this module

        return LoadJob(
            self,
            Path(model_path),
            None if compiled_path is None else Path(compiled_path),
            ComputeUnits(compute_units),
            prewarm,
            function,
        )

    def validate_tensors(
        self,
        input_specs: Sequence[TensorSpec],
        output_specs: Sequence[TensorSpec],
        inputs: Sequence[TensorDescriptor],
        outputs: Sequence[TensorDescriptor] = (),
    ) -> None:
        """The shim's predict-time checks against a description given here (macb_validate_tensors)."""
        keep: list[Any] = []
        in_specs, out_specs = feature_array(input_specs, keep), feature_array(output_specs, keep)
        in_descs, out_descs = tensor_array(inputs, keep), tensor_array(outputs, keep)
        fault = new_fault()
        call = NativeCall("macb_validate_tensors")
        status = self._lib.macb_validate_tensors(
            in_specs,
            len(input_specs),
            out_specs,
            len(output_specs),
            in_descs,
            len(inputs),
            out_descs,
            len(outputs),
            fault,
            call.msg,
            abi.MESSAGE_CAPACITY,
        )
        raise_for_tensors(call, status, fault, inputs, outputs, input_specs, output_specs)


def _push_stage(user_data: Any, stage: int) -> None:
    """Runs on the shim's thread: only queues the stage; the caller's thread reports it."""
    ffi.from_handle(user_data).put(int(stage))


def new_fault() -> Any:
    return ffi.new("macb_tensor_fault *", {"struct_size": ffi.sizeof("macb_tensor_fault")})


def feature_array(specs: Sequence[TensorSpec], keep: list[Any]) -> Any:
    array = ffi.new("macb_feature[]", max(len(specs), 1))
    for slot, spec in zip(array, specs):
        name = ffi.new("char[]", spec.name.encode())
        keep.append(name)
        slot.struct_size = ffi.sizeof("macb_feature")
        slot.name = name
        slot.dtype = abi.DTYPE_CODES.get(spec.dtype, 0)
        slot.rank = len(spec.shape)
        slot.shape[0 : len(spec.shape)] = list(spec.shape)
    return array


def tensor_array(descriptors: Sequence[TensorDescriptor], keep: list[Any]) -> Any:
    """macb_tensor[] for `descriptors`; names and buffers are appended to `keep` for the call."""
    array = ffi.new("macb_tensor[]", max(len(descriptors), 1))
    for slot, desc in zip(array, descriptors):
        if len(desc.shape) > abi.MAX_RANK or len(desc.strides) != len(desc.shape):
            raise TensorLayoutError(str(desc.name), f"rank {len(desc.shape)} with {len(desc.strides)} strides")
        slot.struct_size = ffi.sizeof("macb_tensor")
        if desc.name is not None:
            name = ffi.new("char[]", desc.name.encode())
            keep.append(name)
            slot.name = name
        slot.dtype = desc.dtype_code
        slot.rank = len(desc.shape)
        slot.shape[0 : len(desc.shape)] = list(desc.shape)
        slot.strides[0 : len(desc.strides)] = list(desc.strides)
        if desc.buffer is not None:
            data = ffi.from_buffer(desc.buffer, require_writable=desc.writable)
            keep.append(data)
            slot.data = data
        slot.byte_size = desc.size_bytes
    return array


def raise_for_tensors(
    call: NativeCall,
    status: int,
    fault: Any,
    inputs: Sequence[TensorDescriptor],
    outputs: Sequence[TensorDescriptor],
    input_specs: Sequence[TensorSpec],
    output_specs: Sequence[TensorSpec],
) -> None:
    """Raises the typed error for a failed predict or validate; returns on MACB_OK."""
    if status not in abi.TENSOR_STATUSES:
        call.check(status)
        return
    role = "input" if fault.role == abi.ROLE_INPUT else "output"
    sent_list, specs = (inputs, input_specs) if role == "input" else (outputs, output_specs)
    index = int(fault.index)
    sent = sent_list[index] if 0 <= index < len(sent_list) else None
    found = abi.TensorFault(
        role=role,
        index=index,
        name=(sent.name if sent and sent.name else c_text(fault.name)),
        expected_dtype=abi.DTYPE_NAMES.get(int(fault.expected_dtype), "unknown"),
        expected_shape=tuple(int(v) for v in fault.expected_shape[0 : int(fault.expected_rank)]),
        needed_bytes=int(fault.needed_bytes),
    )
    error = abi.tensor_error(status, call.message, found, sent.summary() if sent else None, [s.name for s in specs])
    raise error from call.native_error(status)


class HandleGuard:
    """Keeps a native handle valid while calls use it; `close` waits for them, then frees it once.

    Lets one thread cancel or close while another waits or predicts, without a use after free.
    """

    def __init__(self, closed_error: Callable[[], Exception]) -> None:
        self._closed_error = closed_error  # raised by use() once the handle is closed
        self._handle: Any = None
        self._users = 0
        self._changed = threading.Condition()

    def set(self, handle: Any) -> None:
        with self._changed:
            self._handle = handle

    @property
    def is_open(self) -> bool:
        with self._changed:
            return self._handle is not None

    @contextmanager
    def use(self) -> Iterator[Any]:
        with self._changed:
            if self._handle is None:
                raise self._closed_error()
            self._users += 1
            handle = self._handle
        try:
            yield handle
        finally:
            with self._changed:
                self._users -= 1
                self._changed.notify_all()

    def close(self, free: Callable[[Any], None]) -> None:
        with self._changed:
            handle, self._handle = self._handle, None
            while handle is not None and self._users:
                self._changed.wait()
        if handle is not None:
            free(handle)
