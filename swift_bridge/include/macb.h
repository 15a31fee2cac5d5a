/*
 * macb.h: the C ABI of the mlx-audio-coreml Swift shim ("macb": mlx-audio Core ML bridge).
 *
 * This header is the contract. The Swift sources implement it (they see these types through
 * module.modulemap), and python/mlx_audio_coreml/native.py declares the block between the
 * "macb:cdef" markers to cffi (a test keeps the two identical).
 *
 * What it does: compile and load a Core ML model as a background *job* that can be waited on with
 * a timeout, polled and abandoned; describe the model's tensors; run predictions from named tensor
 * descriptors over caller memory, writing outputs into caller buffers.
 *
 * Usage:
 *
 *     char msg[512];
 *     if (macb_abi_version() != MACB_ABI_VERSION) { ...refuse to use the library... }
 *     macb_load_params p = {0};
 *     p.struct_size = sizeof p;
 *     p.model_path = "Encoder.mlpackage";
 *     p.compiled_path = "/cache/Encoder-1a2b.mlmodelc";   // stable: Core ML's caches key on it
 *     p.compute_units = MACB_COMPUTE_ALL;
 *     p.flags = MACB_LOAD_PREWARM;
 *     macb_job *job = NULL;
 *     if (macb_load_begin(&p, &job, msg, sizeof msg) != MACB_OK) { ...msg says why... }
 *     int32_t st;
 *     while ((st = macb_job_wait(job, 100, msg, sizeof msg)) == MACB_ERR_TIMEOUT) {
 *         if (user_gave_up) { macb_job_cancel(job); break; }   // returns at once
 *     }
 *     macb_model *model = NULL;
 *     if (st == MACB_OK) macb_job_take_model(job, &model, msg, sizeof msg);
 *     macb_job_free(job);
 *     ...fill macb_tensor descriptors, macb_predict(model, ...)...
 *     macb_model_free(model);
 *
 * Platforms. On macOS 13+ on Apple silicon the backend is Core ML. Everywhere else every symbol
 * exists and reports MACB_ERR_UNAVAILABLE for loads ("Core ML is not available on ..."); the
 * tensor checks (macb_validate_tensors) work everywhere. A test-only build links a stand-in
 * module named CoreML that executes no model (runtime facts report backend "coreml-standin").
 *
 * Conventions.
 *  - Every fallible function returns an int32_t status (MACB_OK or a MACB_ERR_* code) and, when
 *    msg != NULL and msg_size > 0, writes a NUL-terminated UTF-8 message into the caller-owned
 *    buffer msg (truncated to msg_size - 1 bytes; "" on success). Nothing is ever allocated for a
 *    message.
 *  - Structs begin with uint32_t struct_size, set by the caller to sizeof(the struct). A size below
 *    the version-1 size is MACB_ERR_INVALID_ARGUMENT; later versions only append fields, and the
 *    shim reads an appended field only when struct_size covers it (a smaller struct reads as NULL
 *    or zero there). The ABI version still moves with an appended input field: a caller that sets it
 *    must not run against a library that would ignore it.
 *  - Handles (macb_job, macb_model) are opaque, owned by the caller, and released with their
 *    _free function. Passing a freed handle is undefined behaviour.
 *  - Strings passed in are UTF-8, NUL-terminated, borrowed for the duration of the call only.
 *    Strings handed out (macb_feature.name, metadata) are owned by the model and stay valid until
 *    macb_model_free.
 *  - Thread safety: every function may be called from any thread. Calls on different handles run
 *    in parallel. A job handle may be waited on, polled and cancelled from different threads at
 *    once. Predictions on one model are serialized by the shim (Core ML's synchronous prediction
 *    API is not documented as thread-safe); use two models for parallel work.
 *  - The library is never meant to be unloaded (no dlclose): background jobs may outlive the
 *    handles that started them.
 */
#ifndef MACB_H
#define MACB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* macb:cdef-begin (plain declarations only: cffi reads this block) */

/* The version of this contract. Bumped on any incompatible change, and when an input field is
   appended (2: macb_load_params.function_name, MACB_ERR_NO_FUNCTION). */
#define MACB_ABI_VERSION 2

/* Status codes. */
#define MACB_OK 0
#define MACB_ERR_INVALID_ARGUMENT 1   /* a NULL required pointer, a bad struct_size or enum value */
#define MACB_ERR_UNAVAILABLE 2        /* Core ML is not available in this build or on this machine */
#define MACB_ERR_NOT_FOUND 3          /* the model path does not exist */
#define MACB_ERR_COMPILE_FAILED 4     /* Core ML could not compile the package */
#define MACB_ERR_LOAD_FAILED 5        /* Core ML could not load (or prewarm) the compiled model */
#define MACB_ERR_TIMEOUT 6            /* macb_job_wait: the wait ended, the job is still running */
#define MACB_ERR_CANCELLED 7          /* the job handle was cancelled */
#define MACB_ERR_STATE 8              /* called at the wrong time (no model yet, model taken twice) */
#define MACB_ERR_TENSOR_NAME 9        /* a descriptor names no tensor of the model, or one twice */
#define MACB_ERR_TENSOR_MISSING 10    /* an input of the model has no descriptor */
#define MACB_ERR_TENSOR_SHAPE 11      /* rank or shape differs from the model's */
#define MACB_ERR_TENSOR_DTYPE 12      /* unknown dtype code, or one that cannot convert */
#define MACB_ERR_TENSOR_LAYOUT 13     /* negative or overlapping strides; an output aliasing another buffer */
#define MACB_ERR_TENSOR_NULL 14       /* NULL data pointer */
#define MACB_ERR_TENSOR_SIZE 15       /* byte_size smaller than the shape and strides reach */
#define MACB_ERR_PREDICTION_FAILED 16 /* Core ML accepted the tensors but the prediction failed */
#define MACB_ERR_UNSUPPORTED_MODEL 17 /* a feature that is not a fixed-shape multi-array */
#define MACB_ERR_INTERNAL 18          /* a bug in the shim; the message says where */
#define MACB_ERR_NO_FUNCTION 19       /* function_name names no function of the model; the message lists those it has */

/* Load stages, in the order a job passes them (COMPILING is skipped when the compiled cache is used). */
#define MACB_STAGE_QUEUED 0
#define MACB_STAGE_COMPILING 1        /* .mlpackage -> .mlmodelc at compiled_path */
#define MACB_STAGE_LOADING 2          /* MLModel(contentsOf:configuration:): device specialization */
#define MACB_STAGE_PREWARMING 3       /* one prediction on zeros, to surface a failed ANE compile now */
#define MACB_STAGE_READY 4
#define MACB_STAGE_FAILED 5
#define MACB_STAGE_CANCELLED 6        /* only ever reported for a cancelled handle, never by callback */

/* MLModelConfiguration.computeUnits, with Apple's raw values. Requests, not promises. */
#define MACB_COMPUTE_CPU_ONLY 0
#define MACB_COMPUTE_CPU_AND_GPU 1
#define MACB_COMPUTE_ALL 2
#define MACB_COMPUTE_CPU_AND_NEURAL_ENGINE 3

/* Element types. Conversion copies are made between the three float types only. */
#define MACB_DTYPE_FLOAT32 1
#define MACB_DTYPE_FLOAT16 2
#define MACB_DTYPE_FLOAT64 3
#define MACB_DTYPE_INT32 4

#define MACB_ROLE_INPUT 1
#define MACB_ROLE_OUTPUT 2

#define MACB_MAX_RANK 8
#define MACB_NAME_CAPACITY 128

/* macb_load_params.flags */
#define MACB_LOAD_PREWARM 1

/* macb_tensor.flags, written by macb_predict on success. */
#define MACB_TENSOR_WRITTEN_IN_PLACE 1  /* output: Core ML wrote straight into this buffer */
#define MACB_TENSOR_COPIED 2            /* input: a conversion copy was made; output: the shim copied the result in */

typedef struct macb_job macb_job;
typedef struct macb_model macb_model;

/*
 * Called with each stage a load job enters: from the job's background thread, or from the thread
 * calling macb_load_begin (with the stage the job is in when the handle is made: QUEUED for a new
 * job, the current one for an adopted job). Stages only move forward. Never called again once
 * macb_job_cancel or macb_job_free on that handle has returned, so user_data may be released then.
 * It must return quickly and must not call macb_* functions on the same job.
 */
typedef void (*macb_stage_fn)(void *user_data, int32_t stage);

typedef struct macb_runtime_facts {
    uint32_t struct_size;
    int32_t coreml_available;        /* 1: this build can load Core ML models on this machine */
    int32_t neural_engine_available; /* 1 present, 0 absent (a VM counts as absent), -1 unknown */
    int32_t neural_engine_cores;     /* 0 when unknown */
    int32_t running_in_vm;           /* 1 yes, 0 no, -1 unknown */
    int32_t os_version[3];           /* major, minor, patch: macOS version, or the Linux kernel's */
    char os_name[32];                /* "macOS", "Linux", ... */
    char backend[32];                /* "coreml", "coreml-standin" (tests only) or "none" */
    char note[256];                  /* why Core ML or the Neural Engine is unavailable; else "" */
} macb_runtime_facts;

typedef struct macb_load_params {
    uint32_t struct_size;
    const char *model_path;    /* .mlpackage, .mlmodel or an already compiled .mlmodelc */
    const char *compiled_path; /* where the .mlmodelc is kept (reused when it exists); required
                                  unless model_path is a .mlmodelc; its parent is created */
    int32_t compute_units;     /* MACB_COMPUTE_* */
    uint32_t flags;            /* MACB_LOAD_* */
    macb_stage_fn on_stage;    /* may be NULL */
    void *user_data;           /* passed to on_stage */
    /* Since ABI 2. One function of a multi-function model (Core ML specification 9, e.g. one frame
       bucket of a vocoder): MLModelConfiguration.functionName. NULL: the model's default function.
       Needs macOS 15 / iOS 18: on an older OS the job fails with MACB_ERR_UNAVAILABLE; a name the
       compiled model lacks fails with MACB_ERR_NO_FUNCTION. Loads of one model with different
       functions are separate jobs (never adopted across functions) sharing one compiled_path. */
    const char *function_name;
} macb_load_params;

typedef struct macb_job_state {
    uint32_t struct_size;
    int32_t stage;             /* MACB_STAGE_*; CANCELLED once this handle was cancelled */
    int32_t adopted;           /* 1: this handle joined a load of the same model already running */
    int32_t used_compiled_cache; /* 1: compiled_path existed (or model_path was a .mlmodelc) */
    double elapsed_s;          /* seconds since the underlying load started */
} macb_job_state;

typedef struct macb_feature {
    uint32_t struct_size;
    const char *name;          /* owned by the model (or, for macb_validate_tensors, by the caller) */
    int32_t dtype;             /* MACB_DTYPE_* */
    int32_t rank;              /* 1..MACB_MAX_RANK */
    int64_t shape[MACB_MAX_RANK];
} macb_feature;

typedef struct macb_tensor {
    uint32_t struct_size;
    const char *name;
    int32_t dtype;             /* MACB_DTYPE_* of the caller's buffer */
    int32_t rank;
    int64_t shape[MACB_MAX_RANK];
    int64_t strides[MACB_MAX_RANK]; /* in elements, >= 0, not overlapping (C order: 3000, 1 for [80, 3000]) */
    void *data;                /* caller memory; must stay valid for the whole call */
    uint64_t byte_size;        /* bytes available at data */
    uint32_t flags;            /* out: MACB_TENSOR_* */
} macb_tensor;

/* Filled when a tensor check fails (status MACB_ERR_TENSOR_*); zeroed otherwise. */
typedef struct macb_tensor_fault {
    uint32_t struct_size;
    int32_t role;              /* MACB_ROLE_*, 0 when no tensor is at fault */
    int32_t index;             /* index into the caller's inputs or outputs; -1 for a missing input */
    char name[MACB_NAME_CAPACITY]; /* the tensor's name, truncated to fit */
    int32_t expected_dtype;    /* the model's dtype for that tensor, 0 when unknown */
    int32_t expected_rank;
    int64_t expected_shape[MACB_MAX_RANK];
    uint64_t needed_bytes;     /* for MACB_ERR_TENSOR_SIZE */
} macb_tensor_fault;

typedef struct macb_model_info {
    uint32_t struct_size;
    int32_t compute_units;     /* as requested at load */
    int32_t uses_output_backings; /* 0 after a prediction with output backings failed once */
    uint64_t predictions;      /* predictions completed on this model */
} macb_model_info;

/* Never fails. Compare with MACB_ABI_VERSION before calling anything else. */
uint32_t macb_abi_version(void);

/* A static, human-readable build description ("macb 1 (coreml-standin; swift ...)"). Never NULL, never freed. */
const char *macb_build_info(void);

/* Fills *out. Fails only with MACB_ERR_INVALID_ARGUMENT (out NULL or struct_size too small). */
int32_t macb_runtime_facts_get(macb_runtime_facts *out, char *msg, size_t msg_size);

/*
 * Starts loading a model in the background and returns a job handle at once, or joins (adopts)
 * the load of the same model_path + compiled_path + compute_units + function_name already running
 * in this process: a second compile of one model never starts while one runs.
 * Returns MACB_ERR_UNAVAILABLE (no Core ML), MACB_ERR_NOT_FOUND, MACB_ERR_INVALID_ARGUMENT;
 * *out_job is set only on MACB_OK. Compile and load failures are reported by macb_job_wait.
 */
int32_t macb_load_begin(const macb_load_params *params, macb_job **out_job, char *msg, size_t msg_size);

/*
 * Waits up to timeout_ms for the job to end. MACB_OK: the model is ready (take it). MACB_ERR_TIMEOUT:
 * still running (wait again, or cancel). MACB_ERR_CANCELLED: this handle was cancelled (returns as
 * soon as macb_job_cancel is called from another thread). Otherwise the job's failure
 * (MACB_ERR_COMPILE_FAILED, MACB_ERR_LOAD_FAILED, MACB_ERR_UNSUPPORTED_MODEL, MACB_ERR_NO_FUNCTION,
 * MACB_ERR_UNAVAILABLE for a function_name on an OS before macOS 15 / iOS 18, ...) with its message.
 * Returns within timeout_ms plus scheduling delay; 0 polls.
 */
int32_t macb_job_wait(macb_job *job, uint32_t timeout_ms, char *msg, size_t msg_size);

/* Fills *out with the handle's current state. MACB_ERR_INVALID_ARGUMENT on NULL or a small struct_size. */
int32_t macb_job_state_get(const macb_job *job, macb_job_state *out);

/*
 * Abandons the job for this handle and returns at once. Core ML cannot stop a compile: the work
 * finishes in the background; other handles that adopted it still get its result, and when no
 * handle remains the loaded model is dropped (the compiled .mlmodelc stays at compiled_path).
 * Idempotent. MACB_ERR_INVALID_ARGUMENT on NULL.
 */
int32_t macb_job_cancel(macb_job *job);

/*
 * After macb_job_wait returned MACB_OK, hands out a new model handle (once per job handle).
 * MACB_ERR_STATE before the job is ready or on a second call; MACB_ERR_CANCELLED after cancel.
 */
int32_t macb_job_take_model(macb_job *job, macb_model **out_model, char *msg, size_t msg_size);

/* Cancels (if still running) and releases the handle. NULL is ignored. */
void macb_job_free(macb_job *job);

/* Number of inputs (role MACB_ROLE_INPUT) or outputs (MACB_ROLE_OUTPUT), sorted by name. */
int32_t macb_model_feature_count(const macb_model *model, int32_t role, int32_t *out_count);

/* Describes feature `index` of `role`. MACB_ERR_INVALID_ARGUMENT when out of range. */
int32_t macb_model_feature(const macb_model *model, int32_t role, int32_t index, macb_feature *out);

/* The model's creator-defined metadata (MLModelMetadataKey.creatorDefinedKey), sorted by key. */
int32_t macb_model_metadata_count(const macb_model *model, int32_t *out_count);
int32_t macb_model_metadata(const macb_model *model, int32_t index, const char **out_key, const char **out_value);

int32_t macb_model_info_get(const macb_model *model, macb_model_info *out);

/*
 * Runs one prediction. Every input of the model needs a descriptor; outputs may be any subset
 * (each listed output is written, the others are dropped). Every descriptor is checked against the
 * model's description before any memory is read or written; on a check failure nothing is written,
 * *fault (when not NULL) names the tensor and the status is a MACB_ERR_TENSOR_* code.
 * Inputs whose dtype equals the model's are wrapped without copying; float inputs of another float
 * dtype are converted into a scratch copy (flag MACB_TENSOR_COPIED). Outputs of the model's dtype
 * are offered to Core ML as output backings; each output gets MACB_TENSOR_WRITTEN_IN_PLACE when
 * Core ML used the buffer, MACB_TENSOR_COPIED when the shim copied the result in (honouring both
 * sides' strides and converting dtype). If a prediction with backings fails it is retried once
 * without them and the model stops offering backings. Blocks until done; never abandons a
 * prediction that references caller memory.
 */
int32_t macb_predict(macb_model *model,
                     macb_tensor *inputs, size_t n_inputs,
                     macb_tensor *outputs, size_t n_outputs,
                     macb_tensor_fault *fault, char *msg, size_t msg_size);

/* Releases the handle; the model is unloaded when its last handle is gone. NULL is ignored. */
void macb_model_free(macb_model *model);

/*
 * The checks macb_predict makes before touching memory, against a description given by the
 * caller instead of a loaded model. Available on every platform (no Core ML needed).
 */
int32_t macb_validate_tensors(const macb_feature *input_specs, size_t n_input_specs,
                              const macb_feature *output_specs, size_t n_output_specs,
                              const macb_tensor *inputs, size_t n_inputs,
                              const macb_tensor *outputs, size_t n_outputs,
                              macb_tensor_fault *fault, char *msg, size_t msg_size);

/* macb:cdef-end */

#ifdef __cplusplus
}
#endif

#endif /* MACB_H */
