"""iOS18 states: read_state, write_state, and coremltools' coreml_update_state (write, then read).

A state reaches the ops as a `StateCell` (program.py wraps each state input in one per run): reads
and writes happen in program order on the cell, and the cell's last value becomes the state's new
value once the prediction succeeds (runtime.py), so a failed prediction leaves the state untouched.
"""

from __future__ import annotations

import mlx.core as mx

from .registry import OpContext, register


class StateCell:
    """One state's value during a single run. Writes keep the state's dtype."""

    def __init__(self, value: mx.array) -> None:
        self.value = value

    def write(self, data: mx.array) -> None:
        if tuple(data.shape) != tuple(self.value.shape):
            shapes = f"{list(self.value.shape)} and {list(data.shape)}"
            raise ValueError(f"a state and the value written to it differ in shape: {shapes}")
        self.value = data if data.dtype == self.value.dtype else data.astype(self.value.dtype)


def _cell(value: object) -> StateCell:
    if not isinstance(value, StateCell):
        raise TypeError(f"expected a state, got {type(value).__name__}")
    return value


@register("read_state", foldable=False)
def read_state(ctx: OpContext, input: StateCell) -> mx.array:  # noqa: A002  (the MIL parameter name)
    return _cell(input).value


@register("write_state", foldable=False)
def write_state(ctx: OpContext, input: StateCell, data: mx.array) -> None:  # noqa: A002
    _cell(input).write(data)


@register("coreml_update_state", foldable=False)
def coreml_update_state(ctx: OpContext, state: StateCell, value: mx.array) -> mx.array:
    cell = _cell(state)
    cell.write(value)
    return cell.value
