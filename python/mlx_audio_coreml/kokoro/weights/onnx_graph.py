"""Read Kokoro's learned tensors out of an ONNX graph by following it (int8-quantized or float).

The kokoro-onnx exports keep PyTorch module paths in node names (`/decoder/decoder/encode/conv1/Conv`)
and PyTorch names on float initializers (`decoder.decoder.encode.conv1.bias`). Weight-normed conv
weights were constant-folded (weight norm is already applied) and renamed after the folding node, and
ONNX Runtime's dynamic quantization deduplicated zero points and scales, so a weight's scale is found
where the graph uses it, never by its name:
- ConvInteger / MatMulInteger: output -> [Add int32 bias] -> Cast -> Mul by (x_scale * w_scale);
  the product comes from a Mul whose constant input is the weight's scale.
- DynamicQuantizeLSTM: its own W/R scale and zero point inputs (per direction).
- Gather on a quantized table -> DequantizeLinear (scale, zero point); any DequantizeLinear of a
  constant is applied wherever it feeds a weight input.
Dequantized value = (q - zero_point) * scale, in float32.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors.kokoro import KokoroGraphError

if TYPE_CHECKING:  # onnx is the optional `kokoro-convert` extra, imported only where a graph is read
    from onnx import ModelProto, NodeProto

_PREDICTOR_HEADS = ("F0", "N", "F0_proj", "N_proj", "shared")  # exported without their `predictor` parent


@dataclass(frozen=True)
class WeightUse:
    """One constant weight input of one node: `kind` says how to lay it out, `path` is the module path."""

    kind: str  # "conv", "linear", "lstm", "embedding"
    path: str
    node: NodeProto


class OnnxGraph:
    """An ONNX model's initializers and node links, with the lookups weight extraction needs."""

    def __init__(self, model: ModelProto) -> None:
        from onnx import numpy_helper  # the optional `kokoro-convert` extra

        graph = model.graph
        self.nodes = list(graph.node)
        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        self.producer = {out: n for n in self.nodes for out in n.output}
        self.consumers: dict[str, list[NodeProto]] = {}
        for n in self.nodes:
            for name in n.input:
                self.consumers.setdefault(name, []).append(n)

    def is_const(self, name: str) -> bool:
        """A constant: an initializer, or a DequantizeLinear of one."""
        if name in self.consts:
            return True
        node = self.producer.get(name)
        return node is not None and node.op_type == "DequantizeLinear" and node.input[0] in self.consts

    def value(self, name: str) -> np.ndarray:
        """A constant as float32, dequantized when it is the output of DequantizeLinear."""
        if name in self.consts:
            return self.consts[name].astype(np.float32)
        node = self.producer[name]
        return _dequantize(self.consts[node.input[0]], self._opt(node, 2), self.consts[node.input[1]], _axis(node))

    def weight_uses(self) -> Iterator[WeightUse]:
        """Each node that applies a constant weight, with the module it belongs to."""
        for node in self.nodes:
            kind = _KINDS.get(node.op_type)
            if kind is None or len(node.input) < 2:
                continue
            if kind == "embedding" and not self._is_table(node):
                continue  # a Gather on shapes or activations
            if kind != "embedding" and not self.is_const(node.input[1]):
                continue  # an activation-by-activation product (attention scores)
            yield WeightUse(kind, module_path(node.name), node)

    def _is_table(self, gather: NodeProto) -> bool:
        """A float table, or an 8-bit one dequantized right after the Gather."""
        table = self.consts.get(gather.input[0])
        if table is None:
            return False
        if table.dtype == np.float32:
            return True
        users = self.consumers.get(gather.output[0], [])
        return table.dtype in (np.int8, np.uint8) and any(n.op_type == "DequantizeLinear" for n in users)

    def weight(self, use: WeightUse) -> np.ndarray:
        """The float32 weight of a conv, embedding or linear use, in PyTorch layout (linear: (out, in))."""
        w = self._raw_weight(use)
        if use.kind == "linear" and not (use.node.op_type == "Gemm" and _attr(use.node, "transB", 0)):
            w = w.T  # MatMul multiplies by (in, out)
        return w

    def _raw_weight(self, use: WeightUse) -> np.ndarray:
        node = use.node
        if use.kind == "embedding":
            return self._embedding(node)
        if node.op_type in ("ConvInteger", "MatMulInteger"):
            q = self.consts[node.input[1]]
            zero = self._opt(node, 3)
            scale = self._integer_op_scale(node)
            return _dequantize(q, zero, scale, 0 if node.op_type == "ConvInteger" else 1)
        return self.value(node.input[1])

    def lstm(self, node: NodeProto) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(W, R, B) in ONNX LSTM layout: (dirs, 4H, in), (dirs, 4H, H), (dirs, 8H); gates (i, o, f, c)."""
        if node.op_type == "LSTM":
            w, r = self.value(node.input[1]), self.value(node.input[2])
        else:  # DynamicQuantizeLSTM keeps W and R as (dirs, in, 4H) with per-direction scales
            ins = node.input
            w = _dequantize_lstm(self.consts[ins[1]], self._opt(node, 9), self.consts[ins[8]]).transpose(0, 2, 1)
            r = _dequantize_lstm(self.consts[ins[2]], self._opt(node, 11), self.consts[ins[10]]).transpose(0, 2, 1)
        b = self.value(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        if b is None:
            b = np.zeros((w.shape[0], 2 * w.shape[1]), np.float32)
        return w, r, b

    def _opt(self, node: NodeProto, index: int) -> np.ndarray | None:
        ins = node.input
        return self.consts[ins[index]] if len(ins) > index and ins[index] else None

    def _embedding(self, gather: NodeProto) -> np.ndarray:
        table = self.consts[gather.input[0]]
        if table.dtype == np.float32:
            return table
        deq = [n for n in self.consumers.get(gather.output[0], []) if n.op_type == "DequantizeLinear"]
        if not deq:
            raise KokoroGraphError(gather.name, "a quantized table is gathered without a DequantizeLinear after it")
        return _dequantize(table, self._opt(deq[0], 2), self.consts[deq[0].input[1]], _axis(deq[0]))

    def _integer_op_scale(self, node: NodeProto) -> np.ndarray:
        """Follow the int32 result through Add/Cast to the Mul that rescales it; return the weight scale."""
        current = node.output[0]
        for _ in range(4):
            nexts = self.consumers.get(current, [])
            if len(nexts) != 1:
                break
            step = nexts[0]
            if step.op_type in ("Add", "Cast"):
                current = step.output[0]
                continue
            if step.op_type == "Mul":
                other = step.input[1] if step.input[0] == current else step.input[0]
                product = self.producer.get(other)
                if product is not None and product.op_type == "Mul":
                    scales = [i for i in product.input if i in self.consts]
                    if len(scales) == 1:
                        return self.consts[scales[0]].astype(np.float32)
            break
        raise KokoroGraphError(node.name, "no x_scale * w_scale rescaling found after the integer op")


_KINDS = {
    "Conv": "conv",
    "ConvInteger": "conv",
    "ConvTranspose": "conv",
    "MatMul": "linear",
    "MatMulInteger": "linear",
    "Gemm": "linear",
    "LSTM": "lstm",
    "DynamicQuantizeLSTM": "lstm",
    "Gather": "embedding",
}


def module_path(node_name: str) -> str:
    """The PyTorch module path of an exported node: '/encoder/F0.1/conv1/Conv_quant' -> 'predictor.F0.1.conv1'."""
    parts = node_name.strip("/").split("/")[:-1]  # the last part names the op
    if parts[:2] == ["decoder", "decoder"]:
        parts = ["decoder"] + parts[2:]
    elif parts[:1] == ["encoder"]:
        parts = parts[1:]
        if parts and parts[0].split(".")[0] in _PREDICTOR_HEADS:
            parts = ["predictor"] + parts
    out: list[str] = []
    for part in parts:
        part = re.sub(r"_\d+$", "", part)  # repeated calls of a shared module: query_3 -> query
        if out and part.startswith(out[-1] + "."):
            out[-1] = part  # nn.Sequential children repeat their parent: cnn.0/cnn.0.0 -> cnn.0.0
        else:
            out.append(part)
    return ".".join(out)


def torch_name(initializer: str) -> str | None:
    """A float initializer's canonical key ('encoder.bert.x' -> 'bert.x'), or None for graph constants."""
    if initializer.startswith("encoder."):
        return initializer[len("encoder.") :]
    if initializer.startswith("decoder.decoder."):
        return "decoder." + initializer[len("decoder.decoder.") :]
    return None


def _attr(node: NodeProto, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _axis(node: NodeProto) -> int:
    return _attr(node, "axis", 1)


def _dequantize(q: np.ndarray, zero: np.ndarray | None, scale: np.ndarray, axis: int) -> np.ndarray:
    """(q - zero) * scale with per-tensor or per-axis (along `axis`) parameters."""
    x = q.astype(np.float32)
    shape = [1] * q.ndim
    if np.ndim(scale) == 1 and q.ndim > 1:
        shape[axis] = -1
    if zero is not None:
        x = x - np.reshape(zero.astype(np.float32), shape if np.ndim(zero) == 1 else ())
    return x * np.reshape(scale.astype(np.float32), shape if np.ndim(scale) == 1 else ())


def _dequantize_lstm(q: np.ndarray, zero: np.ndarray | None, scale: np.ndarray) -> np.ndarray:
    """DynamicQuantizeLSTM's (dirs, in, 4H) weights: scale/zero per direction (dirs,) or per column (dirs, 4H)."""
    shape = (q.shape[0], 1, -1) if np.ndim(scale) == 2 else (q.shape[0], 1, 1)
    x = q.astype(np.float32)
    if zero is not None:
        x = x - zero.astype(np.float32).reshape(shape)
    return x * scale.astype(np.float32).reshape(shape)
