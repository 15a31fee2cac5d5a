"""Plain float64 numpy references for the vocoder's blocks, written from hexgrad's istftnet.py and
PyTorch's definitions (channels first, PyTorch weight layouts), one loop per tap or frame for clarity."""

from __future__ import annotations

import numpy as np


def conv1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, *, stride: int = 1, padding: int = 0,
           dilation: int = 1) -> np.ndarray:  # fmt: skip
    """torch.nn.functional.conv1d: x (B, Cin, L), weight (Cout, Cin, K) -> (B, Cout, L')."""
    padded = np.pad(x, [(0, 0), (0, 0), (padding, padding)])
    kernel = weight.shape[2]
    out_len = (padded.shape[2] - dilation * (kernel - 1) - 1) // stride + 1
    out = np.zeros((x.shape[0], weight.shape[0], out_len))
    for t in range(out_len):
        for k in range(kernel):
            out[:, :, t] += padded[:, :, t * stride + k * dilation] @ weight[:, :, k].T
    return out + (0 if bias is None else bias[None, :, None])


def conv_transpose1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *, stride: int, padding: int) -> np.ndarray:
    """torch.nn.functional.conv_transpose1d: x (B, Cin, L), weight (Cin, Cout, K) -> (B, Cout, (L-1)*s - 2p + K)."""
    batch, _, length = x.shape
    kernel = weight.shape[2]
    full = np.zeros((batch, weight.shape[1], (length - 1) * stride + kernel))
    for t in range(length):
        for k in range(kernel):
            full[:, :, t * stride + k] += x[:, :, t] @ weight[:, :, k]
    return full[:, :, padding : full.shape[2] - padding] + bias[None, :, None]


def snake(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    return x + (1.0 / alpha) * np.sin(alpha * x) ** 2


def adain(x: np.ndarray, s: np.ndarray, fc_weight: np.ndarray, fc_bias: np.ndarray) -> np.ndarray:
    """hexgrad's AdaIN1d (InstanceNorm1d without affine, eps 1e-5): x (B, C, L), s (B, S)."""
    h = s @ fc_weight.T + fc_bias
    channels = x.shape[1]
    gamma, beta = h[:, :channels, None], h[:, channels:, None]
    normed = (x - x.mean(axis=2, keepdims=True)) / np.sqrt(x.var(axis=2, keepdims=True) + 1e-5)
    return (1 + gamma) * normed + beta


def adain_resblock1(x: np.ndarray, s: np.ndarray, state: dict[str, np.ndarray], kernel: int,
                    dilations: tuple[int, ...]) -> np.ndarray:  # fmt: skip
    """hexgrad's AdaINResBlock1 with canonical keys (`convs1.0.weight`, `alpha1.0`, `adain1.0.fc.weight`, ...)."""
    for j, d in enumerate(dilations):
        xt = adain(x, s, state[f"adain1.{j}.fc.weight"], state[f"adain1.{j}.fc.bias"])
        xt = snake(xt, state[f"alpha1.{j}"])
        xt = conv1d(
            xt, state[f"convs1.{j}.weight"], state[f"convs1.{j}.bias"], padding=(kernel * d - d) // 2, dilation=d
        )
        xt = adain(xt, s, state[f"adain2.{j}.fc.weight"], state[f"adain2.{j}.fc.bias"])
        xt = snake(xt, state[f"alpha2.{j}"])
        xt = conv1d(xt, state[f"convs2.{j}.weight"], state[f"convs2.{j}.bias"], padding=(kernel - 1) // 2)
        x = x + xt
    return x


def _linear_resize(x: np.ndarray, scale: float) -> np.ndarray:
    """F.interpolate(mode='linear', align_corners=False, scale_factor=scale) over axis 1 of (B, L, H)."""
    length = x.shape[1]
    out_len = int(np.floor(length * scale + 1e-9))  # 12000 * (1/300) may round below 40
    src = np.maximum((np.arange(out_len) + 0.5) / scale - 0.5, 0.0)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, length - 1)
    lam = (src - lo)[None, :, None]
    return (1 - lam) * x[:, lo] + lam * x[:, hi]


def sine_phase(f0: np.ndarray, harmonics: int, sample_rate: int, upsample: int) -> np.ndarray:
    """hexgrad's SineGen._f02sine phase (radians, before sin), step by step in float64, without the random
    initial phases: f0 (B, L) per frame -> (B, L * upsample, harmonics)."""
    f0_up = np.repeat(f0, upsample, axis=1)[..., None]  # f0_upsamp: nearest
    rad = (f0_up * np.arange(1, harmonics + 1) / sample_rate) % 1
    rad = _linear_resize(rad, 1 / upsample)
    phase = np.cumsum(rad, axis=1) * 2 * np.pi
    return _linear_resize(phase * upsample, upsample)
