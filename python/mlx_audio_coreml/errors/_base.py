"""The root of every error this package raises, and the fields shared by the seed's twins."""

from __future__ import annotations

from collections.abc import Sequence


class MlxAudioCoreMLError(Exception):
    """Base of every error this package raises on purpose."""


def int_shape(values: Sequence[int]) -> list[int]:
    return [int(v) for v in values]


class ShapeConversionBase(MlxAudioCoreMLError):
    """Fields and message shared by the encoder's and the vocoder's shape conversion failures."""

    def __init__(self, expected: Sequence[int], got: Sequence[int], detail: str = "") -> None:
        self.expected = int_shape(expected)
        self.got = int_shape(got)
        self.detail = detail
        extra = f": {detail}" if detail else ""
        super().__init__(f"shape conversion failed: expected {self.expected}, got {self.got}{extra}")


class InferenceFailureBase(MlxAudioCoreMLError):
    """Fields and message shared by the encoder's and the vocoder's Core ML inference failures."""

    def __init__(self, underlying: BaseException) -> None:
        self.underlying = underlying
        super().__init__(f"Core ML inference failed: {underlying}")
