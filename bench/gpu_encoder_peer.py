"""The torch side of bench/gpu_encoder_probe.py: the same encoder network in PyTorch, eager and as a CUDA graph.

Weights are copied from our MLX `WhisperEncoder` (q/k/v fused as gpu_encoder lays them out), so the
two libraries run one network; F.scaled_dot_product_attention picks flash attention on the GPU.
Imported only when torch is installed.
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import numpy as np
import torch
import torch.nn.functional as F

from mlx_audio_coreml.whisper import gpu_encoder as ge
from mlx_audio_coreml.whisper.model import WhisperEncoder


def torch_tensor(a: mx.array) -> object:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.from_numpy(np.array(a.astype(mx.float32))).to(device=device, dtype=torch.float16)


def torch_encoder(encoder: WhisperEncoder, heads: int) -> Callable[[object], object]:
    """The same network in torch (fused q/k/v, F.sdpa), weights copied from `encoder`; input (B, frames, mels)."""
    c1w, c2w = (torch_tensor(c.weight).permute(0, 2, 1).contiguous() for c in (encoder.conv1, encoder.conv2))
    c1b, c2b, pos = (torch_tensor(a) for a in (encoder.conv1.bias, encoder.conv2.bias, encoder._positional_embedding))
    layers = [[torch_tensor(a) for a in ge.layer_weights(b, True).flat()] for b in encoder.blocks]
    post = (torch_tensor(encoder.ln_post.weight), torch_tensor(encoder.ln_post.bias))
    width = c1w.shape[0]

    def run(mel: object) -> object:
        x = F.gelu(F.conv1d(mel.transpose(1, 2), c1w, c1b, padding=1))
        x = F.gelu(F.conv1d(x, c2w, c2b, stride=2, padding=1)).transpose(1, 2)
        x = x + pos[: x.shape[1]]
        batch, length = x.shape[0], x.shape[1]
        for g1, b1, wqkv, bqkv, wo, bo, g2, b2, w1, bias1, w2, bias2 in layers:
            h = F.layer_norm(x, (width,), g1, b1)
            q, k, v = F.linear(h, wqkv, bqkv).view(batch, length, 3, heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
            y = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(batch, length, width)
            x = x + F.linear(y, wo, bo)
            x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (width,), g2, b2), w1, bias1)), w2, bias2)
        return F.layer_norm(x, (width,), *post)

    return run


def torch_graph(run: Callable[[object], object], mel: object) -> Callable[[], object]:
    """`run(mel)` captured in a CUDA graph: the kernels' time without launch costs."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            run(mel)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = run(mel)
    return lambda: (graph.replay(), out)[1]


def torch_diff(run: Callable[[object], object], mel: object, want: mx.array) -> str:
    with torch.inference_mode():
        got = run(mel).float().cpu().numpy()
    return f"{float(np.max(np.abs(got - np.array(want)))):.3g}"


def within_call(context: Callable[[], object] | None, fn: Callable[[], object]) -> object:
    if context is None:
        return fn()
    with context():  # type: ignore[attr-defined]
        return fn()


def within(context: Callable[[], object] | None, fn: Callable[[], float] | None) -> Callable[[], float] | None:
    if fn is None or context is None:
        return fn

    def run() -> float:
        with context():  # type: ignore[attr-defined]
            return fn()

    return run
