"""Log-mel windows of audio of any length in bounded memory: the seek loop's view of the audio.

Whisper's log-mel is clamped at 8 below the whole clip's maximum, so one window's values depend on
every other window. Rather than hold a two-hour clip's samples and mel (~460 MB + 230 MB), the audio
is streamed twice: a first pass measures the clip (its length and that maximum, block by block),
and the second computes each 30 s window's mel when the seek loop reaches it, from a buffer that
holds only the samples from the current window on. Every window equals the same slice of
`log_mel_spectrogram(samples, padding=N_SAMPLES)` (reflect padding at the start, zeros past the end).
The seek loop only moves forward, which is what lets the buffer forget what lies behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import mlx.core as mx
import numpy as np

from ..errors import EmptyAudio
from .audio import HOP_LENGTH, N_FFT, N_FRAMES, pad_or_trim
from .mel import FRAMES_PER_BLOCK, mel_power


def _real(value: mx.array) -> float:
    """A one-element real array's value (MLX types `.item()` as possibly complex; a log-mel is not)."""
    item = value.item()
    if isinstance(item, complex):
        raise TypeError(f"expected a real value, got {item!r}")
    return float(item)


_HALF = N_FFT // 2  # 200 samples of context each side of a frame's centre
_FLOOR = _real(mx.log10(mx.array(1e-10, dtype=mx.float32)))  # a frame of zeros


class SampleBuffer:
    """Samples of a block stream, read forward: `read(start, stop)` pulls blocks as needed and gives
    zeros past the end; `forget_before(index)` drops what no later read will ask for."""

    def __init__(self, blocks: Iterator[np.ndarray]) -> None:
        self._blocks = blocks
        self._buffer = np.zeros(0, dtype=np.float32)
        self._offset = 0  # absolute index of _buffer[0]
        self.ended = False

    @property
    def first_kept(self) -> int:
        """The first sample index a read may still ask for."""
        return self._offset

    @property
    def available(self) -> int:
        """Samples read so far (the total once `ended`)."""
        return self._offset + self._buffer.size

    def read(self, start: int, stop: int) -> np.ndarray:
        if start < self._offset:
            raise ValueError(f"samples before {self._offset} were already dropped (asked for {start})")
        while not self.ended and self.available < stop:
            block = next(self._blocks, None)
            if block is None:
                self.ended = True
            else:
                self._buffer = np.concatenate([self._buffer, block])
        piece = self._buffer[max(start - self._offset, 0) : max(stop - self._offset, 0)]
        if piece.size < stop - start:
            piece = np.concatenate([piece, np.zeros(stop - start - piece.size, dtype=np.float32)])
        return piece

    def forget_before(self, index: int) -> None:
        drop = min(max(index - self._offset, 0), self._buffer.size)
        if drop:
            self._buffer = self._buffer[drop:].copy()  # a copy, so the dropped part is freed
            self._offset += drop


def _frame_samples(buffer: SampleBuffer, start: int, count: int) -> np.ndarray:
    """The samples frames start .. start + count - 1 read, reflect-padded at the clip's start."""
    low, high = start * HOP_LENGTH - _HALF, (start + count - 1) * HOP_LENGTH + _HALF
    if low >= 0:
        return buffer.read(low, high)
    head = buffer.read(1, 1 - low)[::-1]  # numpy's 'reflect': sample -s stands for sample s
    return np.concatenate([head, buffer.read(0, high)])


def _log_power(buffer: SampleBuffer, start: int, count: int, n_mels: int) -> mx.array:
    """log10 of the mel power (count, n_mels) of frames start .. start + count - 1."""
    padded = mx.array(_frame_samples(buffer, start, count))
    return mx.log10(mx.maximum(mel_power(padded, 0, count, n_mels), 1e-10))


class MelWindows:
    """`window(seek, n_frames)`: the (n_mels, 3000) log-mel window the encoder takes at `seek`.

    Built by `measure`, which reads the audio once; windows are then read from a second stream.
    """

    def __init__(
        self, reopen: Callable[[], Iterator[np.ndarray]], n_mels: int, total_samples: int, maximum: float
    ) -> None:
        self.n_mels = n_mels
        self.total_samples = total_samples
        self.content_frames = total_samples // HOP_LENGTH
        self._floor = maximum - 8.0
        self._reopen = reopen
        self._buffer: SampleBuffer | None = None

    @classmethod
    def measure(cls, reopen: Callable[[], Iterator[np.ndarray]], n_mels: int, name: str = "<audio>") -> MelWindows:
        """Read the stream `reopen()` gives once: its length and its log-mel maximum."""
        buffer, start, maximum = SampleBuffer(reopen()), 0, _FLOOR  # padding frames are zeros
        while not buffer.ended or start * HOP_LENGTH - _HALF < buffer.available:
            log_power = _log_power(buffer, start, FRAMES_PER_BLOCK, n_mels)
            maximum = max(maximum, _real(log_power.max()))
            start += FRAMES_PER_BLOCK
            buffer.forget_before(start * HOP_LENGTH - _HALF)
        if buffer.available == 0:
            raise EmptyAudio(name)
        return cls(reopen, n_mels, buffer.available, maximum)

    @property
    def held_samples(self) -> int:
        """Samples the window buffer holds now (bounded: about a window and a block)."""
        return 0 if self._buffer is None else self._buffer.available - self._buffer.first_kept

    @classmethod
    def empty(cls, n_mels: int) -> MelWindows:
        """No audio (the VAD found no speech): no window to decode; window(0, 0) is all zeros."""
        return cls(lambda: iter(()), n_mels, 0, _FLOOR)

    def window(self, seek: int, n_frames: int) -> mx.array:
        """Frames seek .. seek + n_frames - 1, then zeros to 3000 (as slicing the whole mel would)."""
        if n_frames <= 0:
            return mx.zeros((self.n_mels, N_FRAMES), dtype=mx.float32)
        if self._buffer is None or seek * HOP_LENGTH - _HALF < self._buffer.first_kept:
            self._buffer = SampleBuffer(self._reopen())  # a fresh pass (or a caller that went back)
        log_power = _log_power(self._buffer, seek, n_frames, self.n_mels)
        self._buffer.forget_before(seek * HOP_LENGTH - _HALF)
        mel = ((mx.maximum(log_power, self._floor) + 4.0) / 4.0).T  # (n_mels, n_frames)
        return pad_or_trim(mel, N_FRAMES)  # (n_mels, 3000)
