"""The only cffi user (this package): finds, lazily loads and checks the Swift shim, wraps its C ABI.

Which library: the path given by the caller, else $MLX_AUDIO_COREML_NATIVE_LIB, else
mlx_audio_coreml/_native/libmacb.so (libmacb.dylib on macOS), built by CMake at install time when a
Swift compiler is found. Nothing is loaded at import. The first call that needs a library dlopens it
(cffi ABI mode: no compiler needed), checks `macb_abi_version()` (ABIVersionMismatch otherwise) and
keeps it for the life of the process: it is never dlclosed, because a load job abandoned by cancel
or timeout keeps running inside it.

Every status other than MACB_OK becomes a typed exception from `errors` (see abi.py), raised
`from` a NativeError holding the status and the shim's own message. Arrays are checked (dtype,
C-contiguous, writable outputs) before any pointer crosses, and stay referenced for the whole call.
Waits are short polls (POLL_INTERVAL_S) so Ctrl-C interrupts them.

The stand-in (test only). scripts/build_standin.sh builds the same Swift sources against
swift_bridge/StandIn, a fake module named `CoreML`, into build/standin/libmacb_standin.so. It
executes no model and proves nothing about Core ML: runtime facts report backend "coreml-standin".
Point `library(path)`, `AppleRuntime(library_path=...)` or $MLX_AUDIO_COREML_NATIVE_LIB at it.
A stand-in "package" is any directory (e.g. `enc.mlpackage/`) holding a `standin.json` that says
how the fake Core ML behaves (every key optional except inputs/outputs):

    {"inputs":  [{"name": "x", "dtype": "float32", "shape": [1, 4, 6]}],
     "outputs": [{"name": "y", "dtype": "float16", "shape": [1, 4, 6],
                  "from": "x", "scale": 2.0, "bias": 1.0,   # y = scale * x + bias, in C order
                  "strides": [48, 8, 1]}],                  # layout of the array it returns
     "metadata": {"k": "v"},                                # creator-defined metadata
     "compile_delay_s": 0, "load_delay_s": 0, "predict_delay_s": 0,
     "fail_compile": "why", "fail_load": "why", "fail_predict": "why",
     "backings": "use" | "ignore" | "fail",                 # what predict does with output backings
     "call_log": "/abs/path.log"}                           # one line per call: compile, load, predict

A multi-function model gives `"functions": [{"name": "f4", "inputs": [...], "outputs": [...]}, ...]`
and `"default_function": "f4"` instead of top-level inputs/outputs; a load naming a function gets
its tensors (call log `load <units> function=<name>`), an unknown name fails as in Core ML.
Without "from", an output is bias + scale * (its C-order element index). $MACB_STANDIN_ANE_CORES
sets the Neural Engine the stand-in reports (default 16; 0 for none). tests/native/README.md has more.
"""

from __future__ import annotations

from .abi import ABI_VERSION
from .binding import (
    ENV_LIBRARY,
    POLL_INTERVAL_S,
    LibraryStatus,
    NativeLibrary,
    RuntimeFacts,
    default_library_path,
    ffi,
    library,
    library_status,
    runtime_facts,
)
from .jobs import JobState, LoadJob
from .model import DescriptorReport, ModelInfo, NativeModel
from .tensors import TensorDescriptor

__all__ = [
    "ABI_VERSION",
    "ENV_LIBRARY",
    "POLL_INTERVAL_S",
    "DescriptorReport",
    "JobState",
    "LibraryStatus",
    "LoadJob",
    "ModelInfo",
    "NativeLibrary",
    "NativeModel",
    "RuntimeFacts",
    "TensorDescriptor",
    "default_library_path",
    "ffi",
    "library",
    "library_status",
    "runtime_facts",
]
