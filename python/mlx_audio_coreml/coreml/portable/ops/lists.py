"""Tensor lists: make_list, list_length, list_read, list_write, list_gather, list_scatter.

A list is an immutable `TensorList` value (each write returns a new one), so it can flow through
while_loop's loop variables like any tensor. Elements not written yet read as zeros of the element
shape; a write past the end grows the list (MIL lists are dynamic by default), the gap zero-filled.
Indices are host values: a list indexed by computed values runs eagerly (see control.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from ..values import CAST_DTYPES, mx_dtype
from .registry import OpContext, as_int, as_ints, as_str, register


@dataclass(frozen=True)
class TensorList:
    items: tuple[mx.array | None, ...]  # None: never written (reads as zeros)
    elem_shape: tuple[int, ...] | None  # None when the shape is symbolic in the program
    dtype: mx.Dtype

    def read(self, index: int) -> mx.array:
        if not 0 <= index < len(self.items):
            raise IndexError(f"list index {index} is outside a list of length {len(self.items)}")
        item = self.items[index]
        return item if item is not None else mx.zeros(self.element_shape(), dtype=self.dtype)

    def write(self, index: int, value: mx.array) -> TensorList:
        if index < 0:
            raise IndexError(f"list index {index} is negative")
        if self.elem_shape is not None and tuple(value.shape) != self.elem_shape:
            raise ValueError(f"a list of {list(self.elem_shape)} elements cannot take one of {list(value.shape)}")
        items = list(self.items) + [None] * max(0, index + 1 - len(self.items))
        items[index] = value.astype(self.dtype)
        shape = self.elem_shape if self.elem_shape is not None else tuple(value.shape)
        return TensorList(tuple(items), shape, self.dtype)

    def element_shape(self) -> tuple[int, ...]:
        if self.elem_shape is not None:
            return self.elem_shape
        written = next((item for item in self.items if item is not None), None)
        if written is None:
            raise ValueError("an element of symbolic shape was read before any element was written")
        return tuple(written.shape)


def _as_list(value: object) -> TensorList:
    if not isinstance(value, TensorList):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


@register("make_list", static=("init_length", "dynamic_length", "elem_shape", "dtype"), variadic=("elem_shape",))
def make_list(ctx: OpContext, elem_shape, init_length=1, dynamic_length=True, dtype="fp32") -> TensorList:
    dims = [np.asarray(d) for d in elem_shape]
    symbolic = any(d.dtype.kind in "US" for d in dims)  # string dims: sizes known only at run time
    shape = None if symbolic else tuple(int(d.reshape(-1)[0]) for d in dims)
    return TensorList((None,) * as_int(init_length), shape, mx_dtype(CAST_DTYPES[as_str(dtype)]))


@register("list_length")
def list_length(ctx: OpContext, ls: TensorList) -> mx.array:
    return mx.array(len(_as_list(ls).items), dtype=mx.int32)


@register("list_read", static=("index",))
def list_read(ctx: OpContext, ls: TensorList, index) -> mx.array:
    return _as_list(ls).read(as_int(index))


@register("list_write", static=("index",))
def list_write(ctx: OpContext, ls: TensorList, index, value: mx.array) -> TensorList:
    return _as_list(ls).write(as_int(index), value)


@register("list_gather", static=("indices",))
def list_gather(ctx: OpContext, ls: TensorList, indices) -> mx.array:
    """The elements at `indices`, stacked: (K, *elem_shape)."""
    lst = _as_list(ls)
    picked = [lst.read(i) for i in as_ints(indices)]
    if not picked:
        return mx.zeros((0, *lst.element_shape()), dtype=lst.dtype)
    return mx.stack(picked)


@register("list_scatter", static=("indices",))
def list_scatter(ctx: OpContext, ls: TensorList, indices, value: mx.array) -> TensorList:
    """value[k] written at indices[k], in order."""
    lst = _as_list(ls)
    for k, index in enumerate(as_ints(indices)):
        lst = lst.write(index, value[k])
    return lst
