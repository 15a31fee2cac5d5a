"""Bad input caught before the work it would spoil: sample rates, repeated inputs, batches."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError
from .models import AudioError


class ImplausibleSampleRate(AudioError):
    """A sample rate no real recording has (a broken header, a 0 passed by mistake)."""

    def __init__(self, source: str, sample_rate: object, minimum: int, maximum: int) -> None:
        self.source = source
        self.sample_rate = sample_rate
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(
            f"audio from {source} claims a sample rate of {sample_rate!r} Hz; expected {minimum} to {maximum} Hz "
            "(re-encode the file, or pass the array's real rate as sample_rate)"
        )


class DuplicateInput(MlxAudioCoreMLError):
    """The same input file was given more than once in one batch."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"{path} is given more than once; name each input once")


class BatchFailed(MlxAudioCoreMLError):
    """Some inputs of a batch failed; the others were done. `failures` is (input, error) per failure."""

    def __init__(self, failures: Sequence[tuple[str, BaseException]], total: int) -> None:
        self.failures = list(failures)
        self.total = total
        lines = [f"  {name}: {error}" for name, error in self.failures]
        super().__init__(f"{len(self.failures)} of {total} inputs failed:\n" + "\n".join(lines))
