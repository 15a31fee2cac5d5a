"""onnxruntime on the real int8 Kokoro graph: the reference audio and durations for the MLX model's tests.

The graph's only output is the audio; the predicted durations (hexgrad's `pred_dur`, the int64 result
of round(sum(sigmoid(logits)) / speed) clamped to >= 1) are added as an extra output on an in-memory
copy, found by following the graph from its only Round node. Any other intermediate value can be
exposed by name (`extra_outputs`), e.g. to compare one block at a time.

    ref = OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx")
    out = ref.run([0, 50, 83, 54, 156, 57, 135, 0], style, speed=1.0)   # out.audio, out.durations

Note: the graph quantizes activations dynamically, so the MLX model on the dequantized weights is
close to this reference, not equal to it (DATA.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ReferenceOutput:
    audio: np.ndarray  # (samples,) float32 at 24 kHz
    durations: np.ndarray  # (T,) int64 frames per input token, pads included
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class OnnxReference:
    """One onnxruntime session on the int8 graph with the duration output (and any extras) exposed."""

    def __init__(self, onnx_path: str | Path, extra_outputs: Sequence[str] = (), threads: int = 2) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(onnx_path))
        self.duration_name = duration_output(model)
        self.extra_names = list(extra_outputs)
        for name in [self.duration_name, *self.extra_names]:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(self, token_ids: Sequence[int] | np.ndarray, style: np.ndarray, speed: float = 1.0) -> ReferenceOutput:
        """Tokens include the 0 pad at both ends; style is the (1, 256) reference style."""
        tokens = np.asarray(token_ids, dtype=np.int64).reshape(1, -1)
        feeds = {
            "tokens": tokens,
            "style": np.asarray(style, dtype=np.float32).reshape(1, 256),
            "speed": np.array([speed], dtype=np.float32),
        }
        names = ["audio", self.duration_name, *self.extra_names]
        audio, durations, *extras = self.session.run(names, feeds)
        return ReferenceOutput(
            audio=np.asarray(audio, np.float32).reshape(-1),
            durations=np.asarray(durations).astype(np.int64).reshape(-1),
            extras={name: np.asarray(value) for name, value in zip(self.extra_names, extras)},
        )


def duration_output(model: object) -> str:
    """The int64 durations: Round -> Clip (min 1) -> Cast, followed from the graph's only Round node."""
    nodes = list(model.graph.node)  # type: ignore[attr-defined]
    rounds = [n for n in nodes if n.op_type == "Round"]
    if len(rounds) != 1:
        raise ValueError(f"expected one Round node (the durations), found {len(rounds)}")
    current = rounds[0].output[0]
    for _ in range(3):
        nexts = [n for n in nodes if current in n.input]
        if len(nexts) != 1 or nexts[0].op_type not in ("Clip", "Cast"):
            break
        current = nexts[0].output[0]
        if nexts[0].op_type == "Cast":
            return current
    raise ValueError("no Round -> Clip -> Cast chain for the durations")
