"""Log-mel windows of audio of any length in bounded memory: the seek loop's view of the audio.

Whisper's log-mel is clamped at 8 below the whole clip's maximum, so one window's values depend on
every other window. Rather than hold a two-hour clip's samples and mel (~460 MB + 230 MB), the audio
is streamed twice: a first pass measures the clip (its length and that maximum, block by block),
and the second computes each 30 s window's mel when the seek loop reaches it, from a buffer that
holds only the samples from the current window on. Every window equals the same slice of
`log_mel_spectrogram(samples, padding=N_SAMPLES)` (reflect padding at the start, zeros past the end).
The seek loop only moves forward, which is what lets the buffer forget what lies behind.

Clips up to `CACHED_FRAMES` (30 min) keep the first pass's log-mel blocks instead (57.6 MB for 30 min
at 80 mels, half a 30 min clip's float32 samples), and their windows are slices of them: the second
pass cost ~2% of a long-form transcription here. A frame's values then come from a 6000-frame block's
mel product rather than a window's, which can move them by float32 rounding (on the long-form bench's
3.2 min of speech they were equal).
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
CACHED_FRAMES = 30 * FRAMES_PER_BLOCK  # clips up to 30 min keep their measured log-mel (module doc)
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
        self,
        reopen: Callable[[], Iterator[np.ndarray]],
        n_mels: int,
        total_samples: int,
        maximum: float,
        measured: list[mx.array] | None = None,
    ) -> None:
        self.n_mels = n_mels
        self.total_samples = total_samples
        self.content_frames = total_samples // HOP_LENGTH
        self._floor = maximum - 8.0
        self._reopen = reopen
        self._buffer: SampleBuffer | None = None
        self._measured = measured  # the first pass's log10 power blocks, FRAMES_PER_BLOCK frames each

    @classmethod
    def measure(cls, reopen: Callable[[], Iterator[np.ndarray]], n_mels: int, name: str = "<audio>") -> MelWindows:
        """Read the stream `reopen()` gives once: its length and its log-mel maximum (and, for a
        clip up to CACHED_FRAMES, its log-mel blocks)."""
        buffer, start, maximum = SampleBuffer(reopen()), 0, _FLOOR  # padding frames are zeros
        measured: list[mx.array] | None = []
        while not buffer.ended or start * HOP_LENGTH - _HALF < buffer.available:
            log_power = _log_power(buffer, start, FRAMES_PER_BLOCK, n_mels)
            maximum = max(maximum, _real(log_power.max()))
            start += FRAMES_PER_BLOCK
            buffer.forget_before(start * HOP_LENGTH - _HALF)
            if measured is not None and start <= CACHED_FRAMES:
                measured.append(log_power)
            else:
                measured = None  # too long to keep: windows read the audio a second time
        if buffer.available == 0:
            raise EmptyAudio(name)
        return cls(reopen, n_mels, buffer.available, maximum, measured)

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
        log_power = self._from_measured(seek, n_frames) if self._measured else None
        if log_power is None:
            log_power = self._computed(seek, n_frames)
        mel = ((mx.maximum(log_power, self._floor) + 4.0) / 4.0).T  # (n_mels, n_frames)
        return pad_or_trim(mel, N_FRAMES)  # (n_mels, 3000)

    def _from_measured(self, seek: int, n_frames: int) -> mx.array | None:
        """log10 power of frames seek .. seek + n_frames - 1 sliced from the measured blocks (None
        past them)."""
        assert self._measured is not None
        first, last = seek // FRAMES_PER_BLOCK, (seek + n_frames - 1) // FRAMES_PER_BLOCK
        if last >= len(self._measured):
            return None
        pieces = [self._measured[i] for i in range(first, last + 1)]
        joined = pieces[0] if len(pieces) == 1 else mx.concatenate(pieces)
        offset = seek - first * FRAMES_PER_BLOCK
        return joined[offset : offset + n_frames]

    def _computed(self, seek: int, n_frames: int) -> mx.array:
        """log10 power of frames seek .. seek + n_frames - 1 from the second pass over the audio."""
        if self._buffer is None or seek * HOP_LENGTH - _HALF < self._buffer.first_kept:
            self._buffer = SampleBuffer(self._reopen())  # a fresh pass (or a caller that went back)
        log_power = _log_power(self._buffer, seek, n_frames, self.n_mels)
        self._buffer.forget_before(seek * HOP_LENGTH - _HALF)
        return log_power
