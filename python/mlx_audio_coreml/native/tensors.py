"""Tensor descriptors as they cross the C boundary, and the numpy checks made before they do.

Nothing here touches cffi: binding.py turns descriptors into macb_tensor structs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..coreml.runtime import TensorSpec
from ..errors import TensorDtypeMismatch, TensorLayoutError, TensorValidationError
from .abi import DTYPE_CODES, SentTensor

SUPPORTED_DTYPES: tuple[str, ...] = tuple(DTYPE_CODES)  # float32, float16, float64, int32


@dataclass(frozen=True)
class TensorDescriptor:
    """One macb_tensor: name, dtype, shape, strides in elements, and the memory behind it.

    `buffer` is a C-contiguous array whose bytes are the memory; `shape` and `strides` say how the
    tensor lies in it, so tests can send what numpy arrays cannot (negative or overlapping strides,
    short buffers, unknown dtype codes). `buffer=None` sends a NULL pointer.
    """

    name: str | None
    dtype: str | int  # numpy dtype name, or a raw MACB_DTYPE_* code
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    buffer: np.ndarray | None
    byte_size: int | None = None  # None: buffer.nbytes
    writable: bool = False  # outputs: the buffer must accept writes

    @classmethod
    def of(cls, name: str, array: np.ndarray, *, writable: bool = False) -> TensorDescriptor:
        """The descriptor of a whole C-contiguous array."""
        if not array.flags.c_contiguous:
            raise TensorLayoutError(name, "array is not C-contiguous")
        strides = tuple(s // array.itemsize for s in array.strides)
        return cls(name, array.dtype.name, tuple(array.shape), strides, array, writable=writable)

    @property
    def dtype_code(self) -> int:
        return self.dtype if isinstance(self.dtype, int) else DTYPE_CODES.get(self.dtype, 0)

    @property
    def size_bytes(self) -> int:
        if self.byte_size is not None:
            return self.byte_size
        return 0 if self.buffer is None else int(self.buffer.nbytes)

    def summary(self) -> SentTensor:
        dtype = self.dtype if isinstance(self.dtype, str) else f"dtype code {self.dtype}"
        return SentTensor(dtype=dtype, shape=self.shape, byte_size=self.size_bytes)


def descriptor_for_input(spec: TensorSpec | None, name: str, value: Any) -> tuple[TensorDescriptor, bool]:
    """(descriptor, copied): a non-contiguous input is copied here and reported as a copy.

    A dtype the shim knows but the model does not use (float16 for a float32 input) is passed as is:
    the shim converts it and reports that copy itself.
    """
    array = np.asarray(value)
    if array.dtype.name not in SUPPORTED_DTYPES:
        expected = spec.dtype if spec else " or ".join(SUPPORTED_DTYPES)
        raise TensorDtypeMismatch(name, expected, array.dtype.name)
    copied = not array.flags.c_contiguous
    if copied:
        array = np.ascontiguousarray(array)
    return TensorDescriptor.of(name, array), copied


def output_buffer(spec: TensorSpec | None, name: str, given: Any) -> np.ndarray:
    """The caller's output buffer after checks, or a new one of the model's dtype and shape."""
    if given is None:
        if spec is None:
            raise TensorValidationError(name, "no output buffer and no such output to allocate one for")
        return np.empty(spec.shape, dtype=spec.dtype)
    if not isinstance(given, np.ndarray):
        raise TensorValidationError(name, f"output buffers must be numpy arrays, got {type(given).__name__}")
    if given.dtype.name not in SUPPORTED_DTYPES:
        raise TensorDtypeMismatch(name, spec.dtype if spec else " or ".join(SUPPORTED_DTYPES), given.dtype.name)
    if not given.flags.c_contiguous:
        raise TensorLayoutError(name, "output buffer is not C-contiguous (it would need a hidden copy)")
    if not given.flags.writeable:
        raise TensorLayoutError(name, "output buffer is read-only")
    return given
