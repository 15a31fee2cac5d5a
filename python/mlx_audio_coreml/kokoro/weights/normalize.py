"""Bring a state that uses PyTorch-style names (hexgrad's .pth, mlx-audio's files) to the canonical form.

What differs between the formats and is undone here:
- weight norm stored as `weight_g`/`weight_v` (old torch) or `parametrizations.weight.original0/1`
  (new torch): folded to `weight = g * v / ||v||`, the norm over every axis but the first (torch's dim=0);
- tensors the model does not use: the ALBERT pooler, `position_ids`, AdaIN's InstanceNorm affine
  parameters (identity: ones and zeros; anything else is refused, the model cannot apply it);
- 3-D weights stored channels-last (out, k, in), as mlx-audio saves convs: transposed back when the
  canonical shape says so (no Kokoro conv has as many input channels as taps, so this is unambiguous).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...errors.kokoro import KokoroWeightsError

_G, _V = ("weight_g", "parametrizations.weight.original0"), ("weight_v", "parametrizations.weight.original1")


def fold_weight_norm(state: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Replace every (g, v) pair by its folded `weight`; a lone g or v is an error naming it."""
    out: dict[str, np.ndarray] = {}
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        for role, suffixes in (("g", _G), ("v", _V)):
            hit = next((s for s in suffixes if key.endswith("." + s)), None)
            if hit is not None:
                pairs.setdefault(key[: -len(hit) - 1], {})[role] = value
                break
        else:
            out[key] = value
    for prefix, pair in pairs.items():
        if set(pair) != {"g", "v"}:
            raise KokoroWeightsError(source, f"{prefix} has weight norm's {sorted(pair)} but not both g and v")
        v = pair["v"].astype(np.float32)
        norm = np.sqrt(np.sum(v * v, axis=tuple(range(1, v.ndim)), keepdims=True))
        direction = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)  # an all-zero v stays zero (torch: NaN)
        out[f"{prefix}.weight"] = pair["g"].astype(np.float32).reshape(norm.shape) * direction
    return out


def drop_unused(state: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Remove the pooler, position ids and identity InstanceNorm affine parameters."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key.startswith("bert.pooler.") or key.endswith("position_ids"):
            continue
        if key.endswith((".norm.weight", ".norm.bias")):  # only AdaIN1d has a `.norm` child
            identity = 1.0 if key.endswith(".weight") else 0.0
            if not np.allclose(value, identity):
                raise KokoroWeightsError(
                    source, f"{key} is not the identity; the model's InstanceNorm has no affine part"
                )
            continue
        out[key] = value
    return out


def fix_layouts(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Transpose (out, k, in) weights to (out, in, k) where only the transposed shape is the canonical one."""
    out: dict[str, np.ndarray] = {}
    for key, value in state.items():
        want = expected.get(key)
        if (
            want is not None
            and value.ndim == 3
            and tuple(value.shape) != want
            and value.shape == (want[0], want[2], want[1])
        ):
            value = value.transpose(0, 2, 1)
        out[key] = np.ascontiguousarray(value, dtype=np.float32)
    return out
