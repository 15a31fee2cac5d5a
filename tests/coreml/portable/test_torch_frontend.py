"""Packages from coremltools' PyTorch frontend run on the portable runtime and match PyTorch:
a small Whisper-like encoder (conv front end, self-attention, GELU MLP, layer norms) and a small
conv vocoder block (transposed-conv upsampling, snake activation, leaky ReLU, tanh).
Skipped when torch is not installed (it is in the dev extra)."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import ct, load

torch = pytest.importorskip("torch")
nn = torch.nn


class TinyEncoder(nn.Module):
    def __init__(self, n_mels: int = 8, width: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, width, 3, padding=1)
        self.conv2 = nn.Conv1d(width, width, 3, stride=2, padding=1)
        self.norm1 = nn.LayerNorm(width)
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = nn.functional.gelu(self.conv1(mel))
        x = nn.functional.gelu(self.conv2(x)).transpose(1, 2)  # (B, T, D)
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = (self.split_heads(t) for t in self.qkv(x).chunk(3, dim=-1))  # (B, H, T, Dh) each
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).flatten(2))

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (B, T, D) -> (B, H, T, Dh)


class TinyVocoder(nn.Module):
    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.up = nn.ConvTranspose1d(channels, channels // 2, 4, stride=2, padding=1)
        self.alpha = nn.Parameter(torch.linspace(0.5, 1.5, channels // 2).reshape(1, -1, 1))
        self.conv = nn.Conv1d(channels // 2, 1, 7, padding=3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.up(nn.functional.leaky_relu(features, 0.1))
        x = x + torch.sin(self.alpha * x) ** 2 / self.alpha  # snake
        return torch.tanh(self.conv(x))


def _convert_and_compare(tmp_path, module: nn.Module, example: np.ndarray, precision: str, opset=None) -> None:
    module.eval()
    traced = torch.jit.trace(module, torch.from_numpy(example))
    with torch.no_grad():
        want = module(torch.from_numpy(example)).numpy()
    model = ct.convert(
        traced,
        inputs=[ct.TensorType(name="input", shape=example.shape)],
        convert_to="mlprogram",
        minimum_deployment_target=opset or ct.target.iOS17,
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
    )
    path = tmp_path / "torch.mlpackage"
    model.save(str(path))
    loaded = load(path)
    declared = loaded.description.inputs[0].dtype  # fp16 programs for iOS16+ take float16 input
    got = next(iter(loaded.predict({"input": example.astype(declared)}).outputs.values())).astype(np.float32)
    scale = np.abs(want).max()
    error = np.abs(got - want).max() / scale
    assert got.shape == want.shape
    assert error < (1e-4 if precision == "fp32" else 2e-2), f"relative error {error:.2e}"


@pytest.mark.parametrize("precision,opset", [("fp32", "iOS17"), ("fp16", "iOS18")])
def test_torch_encoder_package_matches_torch(tmp_path, precision, opset):
    """iOS17 spells attention as matmul + softmax, iOS18 as scaled_dot_product_attention."""
    torch.manual_seed(0)
    mel = np.random.default_rng(6).standard_normal((1, 8, 20)).astype(np.float32)
    _convert_and_compare(tmp_path, TinyEncoder(), mel, precision, getattr(ct.target, opset))


def test_torch_vocoder_package_matches_torch(tmp_path):
    torch.manual_seed(1)
    features = np.random.default_rng(7).standard_normal((1, 8, 16)).astype(np.float32)
    _convert_and_compare(tmp_path, TinyVocoder(), features, "fp32")
