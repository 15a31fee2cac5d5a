"""The canonical Kokoro state from a kokoro-onnx graph (the int8 export, dequantized, or the float one).

Every node that applies a constant weight gives `<module path>.weight` (see onnx_graph.py for how the
path and the dequantization scale are found); float initializers that kept their PyTorch names give
the rest (biases, LayerNorm, gamma/beta, Snake alphas). LSTMs come back in PyTorch's gate order with
their two biases apart (ONNX keeps W and R biases separately). The iSTFT's DFT basis is a fixed
buffer, not a weight, and is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ...errors.kokoro import KokoroGraphError, KokoroWeightsError
from .onnx_graph import OnnxGraph, torch_name

_QUANT_SUFFIXES = ("_quantized", "_scale", "_zero_point", "_reshape_shape")
_ONNX_TO_TORCH_GATES = (0, 2, 3, 1)  # ONNX stacks gates (i, o, f, c); PyTorch (i, f, g=c, o)


def load_onnx_state(path: str | Path) -> dict[str, np.ndarray]:
    """Read an exported Kokoro .onnx file into the canonical state (float32, PyTorch names and layouts)."""
    try:
        import onnx
    except ImportError as exc:
        raise KokoroWeightsError(
            str(path), "reading ONNX graphs needs `onnx` (pip install 'mlx-audio-coreml[kokoro-convert]')"
        ) from exc
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a broken file
        raise KokoroWeightsError(str(path), f"not a readable ONNX model ({exc})") from exc
    return state_from_graph(OnnxGraph(model))


def state_from_graph(graph: OnnxGraph) -> dict[str, np.ndarray]:
    """Walk the graph once: weights where nodes use them, then PyTorch-named float initializers."""
    state: dict[str, np.ndarray] = {}
    for use in graph.weight_uses():
        if _is_buffer(use.path):
            continue
        if use.kind == "lstm":
            for key, value in lstm_to_torch(use.path, *graph.lstm(use.node)).items():
                _put(state, key, value)
        else:
            _put(state, f"{use.path}.weight", graph.weight(use))
    for name, value in graph.consts.items():
        key = torch_name(name)
        if key is None or value.dtype != np.float32 or key.endswith(_QUANT_SUFFIXES) or _is_buffer(key):
            continue
        _put(state, key, value)
    return state


def lstm_to_torch(prefix: str, w: np.ndarray, r: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """ONNX LSTM (W (dirs, 4H, in), R (dirs, 4H, H), B (dirs, 8H)) -> nn.LSTM's eight tensors."""
    hidden = r.shape[-1]
    out: dict[str, np.ndarray] = {}
    for d, suffix in enumerate(("", "_reverse")[: w.shape[0]]):
        out[f"{prefix}.weight_ih_l0{suffix}"] = _torch_gates(w[d])
        out[f"{prefix}.weight_hh_l0{suffix}"] = _torch_gates(r[d])
        out[f"{prefix}.bias_ih_l0{suffix}"] = _torch_gates(b[d, : 4 * hidden])
        out[f"{prefix}.bias_hh_l0{suffix}"] = _torch_gates(b[d, 4 * hidden :])
    return out


def torch_lstm_to_onnx(state: Mapping[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The inverse of lstm_to_torch (used to write ONNX fixtures and to check the round trip)."""
    inverse = np.argsort(_ONNX_TO_TORCH_GATES)

    def onnx_gates(x: np.ndarray) -> np.ndarray:
        return np.concatenate([np.split(x, 4, axis=0)[i] for i in inverse], axis=0)

    ws, rs, bs = [], [], []
    for suffix in ("", "_reverse"):
        ws.append(onnx_gates(state[f"{prefix}.weight_ih_l0{suffix}"]))
        rs.append(onnx_gates(state[f"{prefix}.weight_hh_l0{suffix}"]))
        bs.append(
            np.concatenate(
                [onnx_gates(state[f"{prefix}.bias_ih_l0{suffix}"]), onnx_gates(state[f"{prefix}.bias_hh_l0{suffix}"])]
            )
        )
    return np.stack(ws), np.stack(rs), np.stack(bs)


def _torch_gates(x: np.ndarray) -> np.ndarray:
    blocks = np.split(x, 4, axis=0)  # each (hidden, ...)
    return np.ascontiguousarray(np.concatenate([blocks[i] for i in _ONNX_TO_TORCH_GATES], axis=0), dtype=np.float32)


def _is_buffer(key: str) -> bool:
    return ".stft" in key or ".istft" in key  # CustomSTFT's DFT basis and window sum


def _put(state: dict[str, np.ndarray], key: str, value: np.ndarray) -> None:
    """Store once; a second, different value for one key means the graph was misread."""
    value = np.ascontiguousarray(value, dtype=np.float32)
    if key in state and not (state[key].shape == value.shape and np.array_equal(state[key], value)):
        raise KokoroGraphError(key, "two different tensors map to this key")
    state[key] = value
