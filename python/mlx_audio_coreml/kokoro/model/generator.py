"""The iSTFTNet generator (hexgrad's `Generator` and `AdaINResBlock1`): features -> magnitude and phase -> audio.

Channels last throughout, `(B, T, C)`. Per upsampling stage: LeakyReLU, a transposed conv (`ups`),
the harmonic source's spectrum brought to the same rate (`noise_convs`, `noise_res`) and added,
then the mean of the style-conditioned Snake residual blocks (`resblocks`). `conv_post` predicts
log-magnitude and (the sine of) phase for an inverse STFT of n_fft 20, hop 5.
Parameter names follow hexgrad's istftnet.py so canonical keys load one to one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import mlx.core as mx
import numpy as np
from mlx import nn

from ..config import ISTFTNetConfig
from . import host_conv, host_generator
from .adain import AdaIN1d, styled
from .conv import Conv1d, ConvTranspose1d
from .source import SourceModuleHnNSF
from .stft import STFT

SAMPLE_RATE = 24000
HARMONIC_NUM = 8  # overtones above F0: 9 sines in all
VOICED_THRESHOLD = 10.0  # Hz: F0 at or below is unvoiced
_STAGE_SLOPE = 0.1  # LeakyReLU before each upsampling stage
_POST_SLOPE = 0.01  # torch's default, before conv_post


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of an odd kernel with this dilation."""
    return (kernel_size * dilation - dilation) // 2


def snake(x: mx.array, alpha: mx.array) -> mx.array:
    """Snake activation x + sin(alpha x)^2 / alpha (periodic bias that helps audio generators)."""
    return x + (1.0 / alpha) * mx.square(mx.sin(alpha * x))


@partial(mx.compile, shapeless=True)
def _normalized_snake(
    x: mx.array, mean: mx.array, inv_std: mx.array, gamma: mx.array, beta: mx.array, alpha: mx.array
) -> mx.array:
    """AdaIN's normalize-and-style followed by Snake, as one fused kernel (shapeless: every length, one trace)."""
    return snake(styled(x, mean, inv_std, gamma, beta), alpha)


def styled_snake(norm: AdaIN1d, x: mx.array, s: mx.array, alpha: mx.array) -> mx.array:
    """snake(norm(x, s), alpha) with the elementwise work in one pass over x instead of about ten:
    on a GPU each pass over a late stage's activation (~180k frames x 128 channels) is a full trip
    through memory, and the generator makes 36 of these pairs (bench/kokoro_gpu_stages.py)."""
    mean, inv_std, gamma, beta = norm.statistics(x, s)
    return _normalized_snake(x, mean, inv_std, gamma, beta, alpha)


class AdaINResBlock1(nn.Module):
    """Three dilated (AdaIN -> Snake -> conv -> AdaIN -> Snake -> conv) residual steps."""

    def __init__(self, channels: int, kernel_size: int = 3, dilation: Sequence[int] = (1, 3, 5), style_dim: int = 64):
        super().__init__()
        self.convs1 = [
            Conv1d(channels, channels, kernel_size, dilation=d, padding=get_padding(kernel_size, d)) for d in dilation
        ]
        self.convs2 = [Conv1d(channels, channels, kernel_size, padding=get_padding(kernel_size)) for _ in dilation]
        self.adain1 = [AdaIN1d(style_dim, channels) for _ in dilation]
        self.adain2 = [AdaIN1d(style_dim, channels) for _ in dilation]
        self.alpha1 = [mx.ones((1, 1, channels)) for _ in dilation]  # (1, 1, C): channels last
        self.alpha2 = [mx.ones((1, 1, channels)) for _ in dilation]

    @staticmethod
    def from_torch_layout(name: str, value: np.ndarray) -> np.ndarray:
        """hexgrad's alphas are (1, C, 1), channels first."""
        return value.transpose(0, 2, 1) if name.startswith("alpha") else value

    def __call__(self, x: mx.array, s: mx.array) -> mx.array:
        steps = zip(self.convs1, self.convs2, self.adain1, self.adain2, self.alpha1, self.alpha2)
        for conv1, conv2, norm1, norm2, alpha1, alpha2 in steps:
            xt = conv1(styled_snake(norm1, x, s, alpha1))
            xt = conv2(styled_snake(norm2, xt, s, alpha2))
            x = x + xt
        return x


class Generator(nn.Module):
    """Decoder features (B, L, C0) + style + F0 per frame -> audio (B, L * prod(ups) * hop)."""

    def __init__(self, style_dim: int, config: ISTFTNetConfig) -> None:
        super().__init__()
        rates, kernels = config.upsample_rates, config.upsample_kernel_sizes
        self.num_kernels = len(config.resblock_kernel_sizes)
        self.upsample_scale = math.prod(rates) * config.gen_istft_hop_size  # audio samples per F0 frame
        self.m_source = SourceModuleHnNSF(
            SAMPLE_RATE, self.upsample_scale, HARMONIC_NUM, voiced_threshold=VOICED_THRESHOLD
        )
        self.stft = STFT(config.gen_istft_n_fft, config.gen_istft_hop_size)
        source_channels = 2 * self.stft.bins  # magnitude and phase of the harmonic source
        initial = config.upsample_initial_channel
        self.ups = [
            ConvTranspose1d(initial // 2**i, initial // 2 ** (i + 1), k, stride=u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(rates, kernels))
        ]
        self.resblocks: list[AdaINResBlock1] = []
        self.noise_convs: list[Conv1d] = []
        self.noise_res: list[AdaINResBlock1] = []
        for i in range(len(rates)):
            channels = initial // 2 ** (i + 1)
            for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
                self.resblocks.append(AdaINResBlock1(channels, k, d, style_dim))
            if i + 1 < len(rates):
                # Strided conv from the source's STFT frame rate down to this stage's rate.
                stride = math.prod(rates[i + 1 :])
                conv = Conv1d(source_channels, channels, 2 * stride, stride=stride, padding=(stride + 1) // 2)
                self.noise_convs.append(conv)
                self.noise_res.append(AdaINResBlock1(channels, 7, (1, 3, 5), style_dim))
            else:
                self.noise_convs.append(Conv1d(source_channels, channels, 1))
                self.noise_res.append(AdaINResBlock1(channels, 11, (1, 3, 5), style_dim))
        self.conv_post = Conv1d(initial // 2 ** len(rates), source_channels, 7, padding=3)

    def harmonic_spectrum(self, f0: mx.array, key: mx.array | None) -> mx.array:
        """f0 (B, L) -> the harmonic source's STFT (see `source_spectrum`); source noise from `key`."""
        return self.source_spectrum(self.m_source(f0, key))

    def source_spectrum(self, source: mx.array) -> mx.array:
        """source (B, T) -> its STFT as (B, T / hop + 1, 2 * bins): [magnitude | phase]."""
        magnitude, phase = self.stft.transform(source)
        return mx.concatenate([magnitude, phase], axis=-1)

    def __call__(self, x: mx.array, s: mx.array, f0: mx.array, key: mx.array | None) -> mx.array:
        """x (B, L, C0), s (B, style_dim), f0 (B, L) -> audio (B, L * upsample_scale); source noise from `key`."""
        return self.synthesize(x, s, self.harmonic_spectrum(f0, key))

    def synthesize(self, x: mx.array, s: mx.array, har: mx.array) -> mx.array:
        """x (B, L, C0), s (B, style_dim), the source's spectrum `har` -> audio (B, L * upsample_scale)."""
        if host_conv.applies(x.dtype):  # MLX on the CPU: numpy + oneDNN (host_generator.py)
            return host_generator.run(self, x, s, har)
        last = len(self.ups) - 1
        for i, (up, noise_conv, noise_res) in enumerate(zip(self.ups, self.noise_convs, self.noise_res)):
            x = nn.leaky_relu(x, _STAGE_SLOPE)
            x_source = noise_res(noise_conv(har), s)
            x = up(x)
            if i == last:
                x = mx.concatenate([x[:, 1:2], x], axis=1)  # ReflectionPad1d((1, 0)): one more frame, as the STFT has
            x = x + x_source
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            total = blocks[0](x, s)
            for block in blocks[1:]:
                total = total + block(x, s)
            x = total / self.num_kernels
        x = self.conv_post(nn.leaky_relu(x, _POST_SLOPE))
        bins = self.stft.bins
        return self.stft.inverse(mx.exp(x[..., :bins]), mx.sin(x[..., bins:]))
