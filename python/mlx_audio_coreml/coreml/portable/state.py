"""`PortableState`: the states of one stateful model (Core ML's MLState), made by `make_state()`.

It holds one array per state declared in the description, zero-filled at first (what coremltools'
state tests expect of a fresh MLState). Predictions replace the values after they succeed;
`read_state` / `write_state` let a caller look at or set a value between predictions.
"""

from __future__ import annotations

import threading
from typing import Any

import mlx.core as mx
import numpy as np

from ...errors import StateMismatch, TensorDtypeMismatch, TensorShapeMismatch, UnknownTensorName
from ..runtime import TensorSpec
from .values import mx_dtype


class PortableState:
    """States of the model `owner` (an identity token: a state serves only the model that made it)."""

    def __init__(self, owner: object, specs: tuple[TensorSpec, ...]) -> None:
        self._owner = owner
        self.specs = specs
        self._values = {spec.name: mx.zeros(spec.shape, dtype=mx_dtype(spec.dtype)) for spec in specs}
        self._lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.specs)

    def read_state(self, name: str) -> np.ndarray:
        """A copy of the state's current value."""
        with self._lock:
            return np.array(self._values[self._spec(name).name])

    def write_state(self, name: str, value: Any) -> None:
        """Set a state's value; its shape and dtype must be the declared ones."""
        spec = self._spec(name)
        array = value if isinstance(value, mx.array) else mx.array(np.asarray(value))
        if tuple(array.shape) != spec.shape:
            raise TensorShapeMismatch(name, spec.shape, array.shape)
        if array.dtype != mx_dtype(spec.dtype):
            raise TensorDtypeMismatch(name, spec.dtype, str(array.dtype).removeprefix("mlx.core."))
        with self._lock:
            self._values[name] = array

    # --- used by PortableModel -------------------------------------------------------------------

    def check_owner(self, owner: object) -> None:
        if self._owner is not owner:
            raise StateMismatch("this state was made by another model's make_state()")

    def values(self) -> dict[str, mx.array]:
        with self._lock:
            return dict(self._values)

    def update(self, values: dict[str, mx.array]) -> None:
        with self._lock:
            self._values.update(values)

    def _spec(self, name: str) -> TensorSpec:
        spec = next((s for s in self.specs if s.name == name), None)
        if spec is None:
            raise UnknownTensorName(name, self.names)
        return spec
