"""Check a converted encoder package against the MLX encoder it came from.

The package is run by a Core ML runtime (the portable one on machines without Core ML), whatever
its layout, and its states are compared with the MLX encoder's float32 states on the same mel. The
figure of merit is the relative error ||package - mlx|| / ||mlx|| over the whole (1, n_ctx, D) output.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..coreml.registry import availability, get_runtime
from ..coreml.runtime import ComputeUnits, LoadedModel
from ..whisper.encoder_layouts import N_FRAMES, detect_layout

# What the converted encoder must reach against the float32 MLX encoder, per package precision.
DEFAULT_TOLERANCES = {"float16": 1e-2, "float32": 1e-3}


@dataclass(frozen=True)
class ValidationReport:
    runtime: str  # the Core ML runtime that ran the package
    relative_error: float  # ||package - mlx|| / ||mlx||
    max_abs_error: float
    tolerance: float
    seconds: float  # load + one prediction through the runtime

    @property
    def passed(self) -> bool:
        return self.relative_error <= self.tolerance


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """||got - want|| / ||want|| in float64 (Frobenius norms over every element)."""
    got64 = np.asarray(got, dtype=np.float64)
    want64 = np.asarray(want, dtype=np.float64)
    return float(np.linalg.norm(got64 - want64) / max(np.linalg.norm(want64), 1e-30))


def validation_runtime_available(runtime: str = "portable") -> tuple[bool, str]:
    """Whether `runtime` can run packages here, and why not when it cannot."""
    try:
        found = availability(runtime)
    except (ImportError, AttributeError) as exc:  # a runtime module present but not (yet) complete
        return False, f"its module is incomplete: {exc}"
    return found.available, found.reason


def validation_mel(n_mels: int, audio: Any = None) -> np.ndarray:
    """A (1, n_mels, 3000) float32 log-mel of `audio` (anything whisper.audio.load_audio reads),
    padded or trimmed to 30 s; without audio, of a fixed speech-like test signal."""
    from ..whisper.audio import SAMPLE_RATE, load_audio, pad_or_trim
    from ..whisper.mel import log_mel_spectrogram

    samples = _test_signal(SAMPLE_RATE) if audio is None else load_audio(audio)
    mel = log_mel_spectrogram(pad_or_trim(samples), n_mels=n_mels)  # (n_mels, frames)
    return np.array(mel, dtype=np.float32)[None, :, :N_FRAMES]


def run_package(model: LoadedModel, mel: np.ndarray) -> np.ndarray:
    """Encoder states (B, n_ctx, D) float32 from a loaded package of any layout, one window at a time."""
    layout = detect_layout(model.description)
    input_dtype = model.description.inputs[0].dtype
    states = []
    for window in mel:  # packages have a fixed batch of 1
        inputs = {layout.input_name: np.ascontiguousarray(layout.to_input(window[None], input_dtype))}
        result = model.predict(inputs)
        states.append(np.asarray(layout.from_output(np.asarray(result.outputs[layout.output_name]))))
    return np.concatenate(states, axis=0).astype(np.float32)


def mlx_states(encoder: Any, mel: np.ndarray) -> np.ndarray:
    """The MLX encoder's states (B, n_ctx, D) as float32 for a mel (B, n_mels, frames)."""
    import mlx.core as mx

    states = encoder(mx.array(mel).transpose(0, 2, 1))  # MLX convs read (B, frames, n_mels)
    return np.array(states.astype(mx.float32))


def validate_package(
    package: Path,
    reference: np.ndarray,
    mel: np.ndarray,
    tolerance: float,
    runtime: str = "portable",
) -> ValidationReport:
    """Run `package` on `mel` through `runtime` and compare with `reference` (B, n_ctx, D)."""
    started = time.perf_counter()
    loaded = get_runtime(runtime).load(Path(package), ComputeUnits.ALL)  # portable: MLX's default device
    try:
        got = run_package(loaded, mel)
    finally:
        loaded.close()
    seconds = time.perf_counter() - started
    max_abs = float(np.max(np.abs(got.astype(np.float64) - reference)))
    return ValidationReport(runtime, relative_error(got, reference), max_abs, tolerance, seconds)


def _test_signal(sample_rate: int, seconds: float = 12.0) -> np.ndarray:
    """A deterministic voice-like signal: a gliding 120-220 Hz pulse train with formant-ish
    harmonics, syllable-rate amplitude bursts and a little noise, so the mel has speech's range."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    pitch = 170.0 + 50.0 * np.sin(2 * np.pi * 0.3 * t)  # Hz
    phase = 2 * np.pi * np.cumsum(pitch) / sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None) ** 2
    noise = np.random.default_rng(0).standard_normal(t.shape) * 0.01
    return (0.1 * voice * syllables + noise).astype(np.float32)
