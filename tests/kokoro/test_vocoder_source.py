"""The harmonic source (hexgrad's SineGen and SourceModuleHnNSF) against float64 numpy references."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import vocoder_reference as ref

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.kokoro.model.source import SineGen, SourceModuleHnNSF, harmonic_phase

RATE, UP, HARMONICS = 24000, 300, 9


def pitch_contour(frames: int, seed: int = 0) -> np.ndarray:
    """A speech-like F0 (Hz) per frame: gliding 90-350 Hz with unvoiced (0) stretches."""
    rng = np.random.default_rng(seed)
    f0 = 200 + 120 * np.sin(np.linspace(0, 9, frames)) + rng.normal(0, 8, frames)
    f0[frames // 5 : frames // 5 + 12] = 0.0
    return f0[None].astype(np.float32)


def test_harmonic_phase_matches_hexgrad_definition_in_float64():
    f0 = pitch_contour(400)  # 5 s of audio: hexgrad's float32 running sum is ~1e6 rad here
    expected = ref.sine_phase(f0.astype(np.float64), HARMONICS, RATE, UP)

    cycles = np.array(harmonic_phase(mx.array(f0), HARMONICS, RATE, UP))

    assert cycles.shape == expected.shape == (1, 400 * UP, HARMONICS)
    assert cycles.min() >= 0 and cycles.max() < 1
    error = np.angle(np.exp(1j * (2 * np.pi * cycles.astype(np.float64) - expected)))
    assert np.abs(error).max() < 2e-3  # radians


def test_harmonic_phase_with_odd_upsampling_and_a_single_frame():
    for f0, up in [(np.array([[123.0]], np.float32), 7), (pitch_contour(5, seed=1), 3)]:
        expected = ref.sine_phase(f0.astype(np.float64), 3, 1000, up)
        cycles = np.array(harmonic_phase(mx.array(f0), 3, 1000, up)).astype(np.float64)
        np.testing.assert_allclose(np.exp(2j * np.pi * cycles), np.exp(1j * expected), atol=1e-4)


def test_sine_gen_is_silent_unvoiced_and_harmonic_voiced_without_noise():
    f0 = np.array([[0.0, 5.0, 150.0, 150.0]], np.float32)  # threshold 10 Hz: two unvoiced frames
    sines, voiced = SineGen(RATE, UP, HARMONICS - 1, voiced_threshold=10)(mx.array(f0), None)
    sines, voiced = np.array(sines), np.array(voiced)

    assert sines.shape == (1, 4 * UP, HARMONICS) and voiced.shape == (1, 4 * UP, 1)
    assert np.array_equal(voiced[0, :, 0], np.repeat([0.0, 0.0, 1.0, 1.0], UP))
    assert np.all(sines[0, : 2 * UP] == 0)
    expected = 0.1 * np.sin(ref.sine_phase(f0.astype(np.float64), HARMONICS, RATE, UP))
    np.testing.assert_allclose(sines[0, 2 * UP :], expected[0, 2 * UP :], atol=1e-4)


def test_sine_gen_noise_is_loud_unvoiced_and_faint_voiced():
    f0 = mx.array(np.repeat([[0.0, 200.0]], 40, axis=0).reshape(1, -1).astype(np.float32))  # 80 frames
    gen = SineGen(RATE, UP, HARMONICS - 1, voiced_threshold=10)
    clean, voiced = gen(f0, None)
    noisy, _ = gen(f0, mx.random.key(7))
    noise = np.array(noisy - clean)
    voiced = np.array(voiced)[..., 0].astype(bool)

    assert abs(noise[~voiced].std() - 0.1 / 3) < 0.001  # hexgrad: sine_amp / 3
    assert abs(noise[voiced].std() - 0.003) < 0.0001  # hexgrad: noise_std


def test_source_merges_the_harmonics_with_its_linear_layer_and_tanh():
    rng = np.random.default_rng(4)
    source = SourceModuleHnNSF(RATE, UP, HARMONICS - 1, voiced_threshold=10)
    weight, bias = rng.standard_normal((1, HARMONICS)), rng.standard_normal(1)
    source.l_linear.weight, source.l_linear.bias = mx.array(weight, mx.float32), mx.array(bias, mx.float32)
    f0 = pitch_contour(30, seed=2)

    merged = np.array(source(mx.array(f0), None))

    sines = 0.1 * np.sin(ref.sine_phase(f0.astype(np.float64), HARMONICS, RATE, UP))
    sines *= np.repeat(f0 > 10, UP, axis=1)[..., None]
    expected = np.tanh(sines @ weight.T + bias)[..., 0]
    assert merged.shape == (1, 30 * UP)
    np.testing.assert_allclose(merged, expected, atol=1e-4)
