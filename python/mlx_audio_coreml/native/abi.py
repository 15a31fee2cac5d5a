"""The shim's C declarations, code tables, and statuses turned into typed exceptions.

CDEF is the block of swift_bridge/include/macb.h between the "macb:cdef" markers with the comments
taken out: the header is the contract, and tests/native/test_header.py fails when the two differ.
Nothing here touches cffi; binding.py hands CDEF to it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import (
    ANECompilationCancelled,
    CoreMLRuntimeUnavailable,
    MissingTensor,
    MlxAudioCoreMLError,
    ModelLoadFailed,
    NativeError,
    PackageError,
    PredictionFailed,
    TensorBufferTooSmall,
    TensorDtypeMismatch,
    TensorLayoutError,
    TensorNullPointer,
    TensorShapeMismatch,
    TensorValidationError,
    UnknownFunction,
    UnknownTensorName,
)

ABI_VERSION = 2  # MACB_ABI_VERSION this Python code speaks

CDEF = """
#define MACB_ABI_VERSION 2

#define MACB_OK 0
#define MACB_ERR_INVALID_ARGUMENT 1
#define MACB_ERR_UNAVAILABLE 2
#define MACB_ERR_NOT_FOUND 3
#define MACB_ERR_COMPILE_FAILED 4
#define MACB_ERR_LOAD_FAILED 5
#define MACB_ERR_TIMEOUT 6
#define MACB_ERR_CANCELLED 7
#define MACB_ERR_STATE 8
#define MACB_ERR_TENSOR_NAME 9
#define MACB_ERR_TENSOR_MISSING 10
#define MACB_ERR_TENSOR_SHAPE 11
#define MACB_ERR_TENSOR_DTYPE 12
#define MACB_ERR_TENSOR_LAYOUT 13
#define MACB_ERR_TENSOR_NULL 14
#define MACB_ERR_TENSOR_SIZE 15
#define MACB_ERR_PREDICTION_FAILED 16
#define MACB_ERR_UNSUPPORTED_MODEL 17
#define MACB_ERR_INTERNAL 18
#define MACB_ERR_NO_FUNCTION 19

#define MACB_STAGE_QUEUED 0
#define MACB_STAGE_COMPILING 1
#define MACB_STAGE_LOADING 2
#define MACB_STAGE_PREWARMING 3
#define MACB_STAGE_READY 4
#define MACB_STAGE_FAILED 5
#define MACB_STAGE_CANCELLED 6

#define MACB_COMPUTE_CPU_ONLY 0
#define MACB_COMPUTE_CPU_AND_GPU 1
#define MACB_COMPUTE_ALL 2
#define MACB_COMPUTE_CPU_AND_NEURAL_ENGINE 3

#define MACB_DTYPE_FLOAT32 1
#define MACB_DTYPE_FLOAT16 2
#define MACB_DTYPE_FLOAT64 3
#define MACB_DTYPE_INT32 4

#define MACB_ROLE_INPUT 1
#define MACB_ROLE_OUTPUT 2

#define MACB_MAX_RANK 8
#define MACB_NAME_CAPACITY 128

#define MACB_LOAD_PREWARM 1

#define MACB_TENSOR_WRITTEN_IN_PLACE 1
#define MACB_TENSOR_COPIED 2

typedef struct macb_job macb_job;
typedef struct macb_model macb_model;

typedef void (*macb_stage_fn)(void *user_data, int32_t stage);

typedef struct macb_runtime_facts {
    uint32_t struct_size;
    int32_t coreml_available;
    int32_t neural_engine_available;
    int32_t neural_engine_cores;
    int32_t running_in_vm;
    int32_t os_version[3];
    char os_name[32];
    char backend[32];
    char note[256];
} macb_runtime_facts;

typedef struct macb_load_params {
    uint32_t struct_size;
    const char *model_path;
    const char *compiled_path;
    int32_t compute_units;
    uint32_t flags;
    macb_stage_fn on_stage;
    void *user_data;
    const char *function_name;
} macb_load_params;

typedef struct macb_job_state {
    uint32_t struct_size;
    int32_t stage;
    int32_t adopted;
    int32_t used_compiled_cache;
    double elapsed_s;
} macb_job_state;

typedef struct macb_feature {
    uint32_t struct_size;
    const char *name;
    int32_t dtype;
    int32_t rank;
    int64_t shape[MACB_MAX_RANK];
} macb_feature;

typedef struct macb_tensor {
    uint32_t struct_size;
    const char *name;
    int32_t dtype;
    int32_t rank;
    int64_t shape[MACB_MAX_RANK];
    int64_t strides[MACB_MAX_RANK];
    void *data;
    uint64_t byte_size;
    uint32_t flags;
} macb_tensor;

typedef struct macb_tensor_fault {
    uint32_t struct_size;
    int32_t role;
    int32_t index;
    char name[MACB_NAME_CAPACITY];
    int32_t expected_dtype;
    int32_t expected_rank;
    int64_t expected_shape[MACB_MAX_RANK];
    uint64_t needed_bytes;
} macb_tensor_fault;

typedef struct macb_model_info {
    uint32_t struct_size;
    int32_t compute_units;
    int32_t uses_output_backings;
    uint64_t predictions;
} macb_model_info;

uint32_t macb_abi_version(void);

const char *macb_build_info(void);

int32_t macb_runtime_facts_get(macb_runtime_facts *out, char *msg, size_t msg_size);

int32_t macb_load_begin(const macb_load_params *params, macb_job **out_job, char *msg, size_t msg_size);

int32_t macb_job_wait(macb_job *job, uint32_t timeout_ms, char *msg, size_t msg_size);

int32_t macb_job_state_get(const macb_job *job, macb_job_state *out);

int32_t macb_job_cancel(macb_job *job);

int32_t macb_job_take_model(macb_job *job, macb_model **out_model, char *msg, size_t msg_size);

void macb_job_free(macb_job *job);

int32_t macb_model_feature_count(const macb_model *model, int32_t role, int32_t *out_count);

int32_t macb_model_feature(const macb_model *model, int32_t role, int32_t index, macb_feature *out);

int32_t macb_model_metadata_count(const macb_model *model, int32_t *out_count);
int32_t macb_model_metadata(const macb_model *model, int32_t index, const char **out_key, const char **out_value);

int32_t macb_model_info_get(const macb_model *model, macb_model_info *out);

int32_t macb_predict(macb_model *model,
    macb_tensor *inputs, size_t n_inputs,
    macb_tensor *outputs, size_t n_outputs,
    macb_tensor_fault *fault, char *msg, size_t msg_size);

void macb_model_free(macb_model *model);

int32_t macb_validate_tensors(const macb_feature *input_specs, size_t n_input_specs,
    const macb_feature *output_specs, size_t n_output_specs,
    const macb_tensor *inputs, size_t n_inputs,
    const macb_tensor *outputs, size_t n_outputs,
    macb_tensor_fault *fault, char *msg, size_t msg_size);

"""

# --- Codes, read from CDEF -----------------------------------------------------------------------

# Every "#define MACB_* <number>" of CDEF, by name: the codes are spelled once, in the header.
CONSTANTS: dict[str, int] = {name: int(value) for name, value in re.findall(r"#define (MACB_\w+) (\d+)", CDEF)}


def _named(prefix: str) -> dict[int, str]:
    """code -> lower-case name for the constants MACB_<prefix>_*: MACB_DTYPE_FLOAT16 -> "float16"."""
    start = f"MACB_{prefix}_"
    return {code: name[len(start) :].lower() for name, code in CONSTANTS.items() if name.startswith(start)}


DTYPE_NAMES: dict[int, str] = _named("DTYPE")  # numpy dtype names
DTYPE_CODES: dict[str, int] = {name: code for code, name in DTYPE_NAMES.items()}
STAGE_NAMES: dict[int, str] = _named("STAGE")  # coreml.runtime.LoadStage values
MAX_RANK = CONSTANTS["MACB_MAX_RANK"]
ROLE_INPUT = CONSTANTS["MACB_ROLE_INPUT"]
ROLE_OUTPUT = CONSTANTS["MACB_ROLE_OUTPUT"]
MESSAGE_CAPACITY = 1024  # bytes of the caller-owned message buffer

# --- Status codes to exceptions ------------------------------------------------------------------

OK = CONSTANTS["MACB_OK"]
ERR_UNAVAILABLE = CONSTANTS["MACB_ERR_UNAVAILABLE"]
ERR_NOT_FOUND = CONSTANTS["MACB_ERR_NOT_FOUND"]
ERR_COMPILE_FAILED = CONSTANTS["MACB_ERR_COMPILE_FAILED"]
ERR_LOAD_FAILED = CONSTANTS["MACB_ERR_LOAD_FAILED"]
ERR_TIMEOUT = CONSTANTS["MACB_ERR_TIMEOUT"]
ERR_CANCELLED = CONSTANTS["MACB_ERR_CANCELLED"]
ERR_TENSOR_NAME = CONSTANTS["MACB_ERR_TENSOR_NAME"]
ERR_TENSOR_MISSING = CONSTANTS["MACB_ERR_TENSOR_MISSING"]
ERR_TENSOR_SHAPE = CONSTANTS["MACB_ERR_TENSOR_SHAPE"]
ERR_TENSOR_DTYPE = CONSTANTS["MACB_ERR_TENSOR_DTYPE"]
ERR_TENSOR_LAYOUT = CONSTANTS["MACB_ERR_TENSOR_LAYOUT"]
ERR_TENSOR_NULL = CONSTANTS["MACB_ERR_TENSOR_NULL"]
ERR_TENSOR_SIZE = CONSTANTS["MACB_ERR_TENSOR_SIZE"]
ERR_PREDICTION_FAILED = CONSTANTS["MACB_ERR_PREDICTION_FAILED"]
ERR_UNSUPPORTED_MODEL = CONSTANTS["MACB_ERR_UNSUPPORTED_MODEL"]
ERR_NO_FUNCTION = CONSTANTS["MACB_ERR_NO_FUNCTION"]
TENSOR_STATUSES = frozenset(range(ERR_TENSOR_NAME, ERR_TENSOR_SIZE + 1))


@dataclass(frozen=True)
class TensorFault:
    """A macb_tensor_fault read back from the shim: which tensor failed and what was expected."""

    role: str  # "input" | "output"
    index: int  # into the caller's descriptors; -1 for a missing input
    name: str
    expected_dtype: str
    expected_shape: tuple[int, ...]
    needed_bytes: int


@dataclass(frozen=True)
class SentTensor:
    """What the caller sent for the faulty tensor (for the `got` fields)."""

    dtype: str
    shape: tuple[int, ...]
    byte_size: int


def tensor_error(
    status: int, message: str, fault: TensorFault, sent: SentTensor | None, known: Sequence[str]
) -> TensorValidationError:
    """The typed error for a failed tensor check (status MACB_ERR_TENSOR_*)."""
    name = fault.name
    if status == ERR_TENSOR_NAME:
        # an unknown name, or a known one given twice (the message says which)
        return UnknownTensorName(name, known) if name not in known else TensorValidationError(name, message)
    if status == ERR_TENSOR_MISSING:
        return MissingTensor(name)
    if status == ERR_TENSOR_SHAPE:
        return TensorShapeMismatch(name, fault.expected_shape, sent.shape if sent else ())
    if status == ERR_TENSOR_DTYPE:
        return TensorDtypeMismatch(name, fault.expected_dtype, sent.dtype if sent else "unknown")
    if status == ERR_TENSOR_LAYOUT:
        return TensorLayoutError(name, message)
    if status == ERR_TENSOR_NULL:
        return TensorNullPointer(name)
    return TensorBufferTooSmall(name, fault.needed_bytes, sent.byte_size if sent else 0)


def status_error(
    status: int, message: str, *, path: str = "", stage: str = "", function: str = ""
) -> MlxAudioCoreMLError:
    """The typed error for every other status; `path` (and `function`) name the model for load failures.
    The shim lists a model's functions only in its message, so UnknownFunction.available is None here."""
    if status == ERR_UNAVAILABLE:
        return CoreMLRuntimeUnavailable("apple", message)
    if status in (ERR_NOT_FOUND, ERR_UNSUPPORTED_MODEL):
        return PackageError(path, message)
    if status == ERR_NO_FUNCTION:
        return UnknownFunction(path, function, None, message)
    if status in (ERR_COMPILE_FAILED, ERR_LOAD_FAILED):
        return ModelLoadFailed(path, message)
    if status == ERR_CANCELLED:
        return ANECompilationCancelled(stage)
    if status == ERR_PREDICTION_FAILED:
        return PredictionFailed(message)
    return NativeError(status, message)  # invalid argument, state, internal: bugs, not user errors
