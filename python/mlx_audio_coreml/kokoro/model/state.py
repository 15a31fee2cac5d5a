"""Strict loading of a canonical Kokoro state (PyTorch names and layouts) into MLX modules.

The canonical state is `{hexgrad name: float32 numpy array}` in PyTorch layouts (see the Kokoro
contract). The model's parameter names equal the canonical names, so loading is: check the two key
sets are equal, convert each array to the layout of the module that owns it, check shapes, update.
Layouts: `nn.Conv1d` weights `(out, in, k)` -> `(out, k, in)`; `nn.ConvTranspose1d` weights
`(in, out, k)` -> `(out, k, in)`; a module with its own rule defines
`from_torch_layout(name, array) -> array`; every other array is taken as is. Arrays a module holds
as constants, not weights, must be named with a leading underscore (MLX then leaves them out of
`parameters()`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from ...errors import KokoroStateMismatch


def parameter_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Every canonical key the model expects, with its MLX-layout shape."""
    flat: list[tuple[str, mx.array]] = tree_flatten(model.parameters())  # type: ignore[assignment]
    return {k: tuple(v.shape) for k, v in flat}


def _owner(model: nn.Module, key: str) -> tuple[nn.Module, str]:
    """The innermost module holding parameter `key`, and the parameter's dotted name within it
    (`alpha1.0` when a module keeps a list of arrays)."""
    parts = key.split(".")
    node: Any = model
    owner, start = model, 0
    for i, part in enumerate(parts[:-1]):
        node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, nn.Module):
            owner, start = node, i + 1
    return owner, ".".join(parts[start:])


def to_mlx_layout(module: nn.Module, name: str, value: np.ndarray) -> np.ndarray:
    """One canonical array in the layout `module` holds it in."""
    own_rule = getattr(module, "from_torch_layout", None)
    if own_rule is not None:
        return own_rule(name, value)
    if name == "weight" and isinstance(module, nn.Conv1d):
        return value.transpose(0, 2, 1)
    if name == "weight" and isinstance(module, nn.ConvTranspose1d):
        return value.transpose(1, 2, 0)
    return value


def load_canonical_state(model: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Load `state` into `model`; raises KokoroStateMismatch naming every missing, unexpected or misshapen key."""
    expected = parameter_shapes(model)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shape_errors = []
    weights = []
    for key in sorted(set(expected) & set(state)):
        module, name = _owner(model, key)
        value = to_mlx_layout(module, name, np.asarray(state[key], dtype=np.float32))
        if tuple(value.shape) != expected[key]:
            shape_errors.append(f"{key}: {tuple(np.shape(state[key]))} gives {value.shape}, expected {expected[key]}")
            continue
        weights.append((key, mx.array(value)))
    if missing or unexpected or shape_errors:
        raise KokoroStateMismatch(missing, unexpected, shape_errors)
    model.update(tree_unflatten(weights))
    mx.eval(model.parameters())
