"""Audio bytes for `/v1/audio/speech`, produced piece by piece as sentences are made.

pcm: 16-bit samples as they come. wav: a header whose sizes say "length unknown" (0xFFFFFFFF, as
streaming servers write it), then 16-bit samples. mp3: each sentence encoded on its own with its
VBR tag frame dropped (a tag's frame count would make players stop after the first sentence);
MPEG frames concatenate. flac: one file once the last sentence is made.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from ..audio.write import encode, to_int16
from ..cancel import CancelToken
from .work import JobCancelled

MEDIA_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "pcm": "audio/pcm"}

_KBPS = {3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1 layer III
         2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}  # MPEG-2 and 2.5  # fmt: skip
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


async def encoded(first: np.ndarray, pieces: asyncio.Queue, end: Any, fmt: str, rate: int) -> AsyncIterator[bytes]:
    """The response body: `first`, then each piece from `pieces` until `end`, in `fmt`."""
    if fmt == "flac":
        audio = [first]
        while (piece := await pieces.get()) is not end:
            audio.append(piece)
        yield encode(np.concatenate(audio), rate, "flac")
        return
    if fmt == "wav":
        yield streaming_wav_header(rate)
    piece = first
    while piece is not end:
        yield mp3_frames(encode(piece, rate, "mp3")) if fmt == "mp3" else to_int16(piece).tobytes()
        piece = await pieces.get()


def synthesis_job(
    session: Any, text: str, voice: str, speed: float, deliver: Callable[[np.ndarray], None]
) -> Callable[[CancelToken], None]:
    """The work a worker runs: each sentence's samples to `deliver` as soon as it is made."""

    def run(token: CancelToken) -> None:
        for piece in session.stream(text, voice=voice, speed=speed):
            if token.cancelled:
                raise JobCancelled()
            deliver(np.asarray(getattr(piece, "audio", piece), dtype=np.float32).reshape(-1))

    return run


def streaming_wav_header(rate: int, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV header whose RIFF and data sizes are 0xFFFFFFFF: length unknown."""
    block = channels * 2
    return b"".join([
        b"RIFF", struct.pack("<I", 0xFFFFFFFF), b"WAVE",
        b"fmt ", struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16),
        b"data", struct.pack("<I", 0xFFFFFFFF),
    ])  # fmt: skip


def mp3_frames(data: bytes) -> bytes:
    """An MP3 file's audio frames: its leading ID3v2 tag and Xing/Info tag frame removed."""
    if data[:3] == b"ID3" and len(data) >= 10:  # size: four 7-bit bytes, after a 10-byte header
        data = data[10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]) :]
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return data
    version = (data[1] >> 3) & 3  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    bitrate_index, rate_index, padding = data[2] >> 4, (data[2] >> 2) & 3, (data[2] >> 1) & 1
    if version not in _RATES or rate_index == 3 or bitrate_index in (0, 15):
        return data
    kbps = _KBPS[3 if version == 3 else 2][bitrate_index]
    length = (144 if version == 3 else 72) * kbps * 1000 // _RATES[version][rate_index] + padding
    first = data[:length]
    return data[length:] if b"Xing" in first or b"Info" in first else data
