"""float16 audio keys and values (cpu/half_audio.py, cpu_kernels/attend_half.c): the copy rounds as numpy
does, bit for bit, and refuses values float16 cannot hold; cross-attention over float16 audio is the
float32 kernel's result on the widened values, bit for bit, on every path (one row, rows sharing
audio four at a time, rows with audio of their own, frame counts that leave a tail); a decoder
block in one C call likewise; and the C entry refuses what it cannot take."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from mlx_audio_coreml.cpu import half_audio, native_kernels

pytestmark = pytest.mark.skipif(not half_audio.supported(), reason="no C kernels, or this CPU lacks F16C/AVX2/FMA")

EDGES = [0.0, -0.0, 1e-8, -1e-8, 2.98e-8, 5.96e-8, 6e-5, 3.05e-5, 65504.0, -65504.0, 65519.99, -65519.99,
         1.00048828125, 1.00146484375, -2.00048828125, 0.1, 1e4, 3.14159]  # fmt: skip


def test_the_copy_rounds_as_numpy_bit_for_bit_subnormals_and_ties_included() -> None:
    rng = np.random.default_rng(0)
    block = (rng.standard_normal((3, 2, 8, 37)) * 300).astype(np.float32)  # a size with a tail past 8
    block.flat[: len(EDGES)] = EDGES
    half = half_audio.to_half(block)
    assert half is not None and half.dtype == np.float16 and half.shape == block.shape
    np.testing.assert_array_equal(half.view(np.uint16), block.astype(np.float16).view(np.uint16))


@pytest.mark.parametrize("bad", [65520.0, -70000.0, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", [0, 13])  # in a group of eight, and in the tail
def test_a_value_float16_cannot_hold_gives_none(bad: float, where: int) -> None:
    block = np.ones(14, np.float32)
    block[where] = bad
    assert half_audio.to_half(block) is None


def test_only_contiguous_float32_is_taken() -> None:
    with pytest.raises(ValueError, match="float32"):
        half_audio.to_half(np.ones((4, 4)))
    with pytest.raises(ValueError, match="float32"):
        half_audio.to_half(np.ones((4, 4), np.float32).T)


def _half_audio(rng: np.random.Generator, audio: int, heads: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
    keys_t = half_audio.to_half((rng.standard_normal((audio, heads, 64, frames)) * 2).astype(np.float32))
    values = half_audio.to_half(rng.standard_normal((audio, heads, frames, 64)).astype(np.float32))
    assert keys_t is not None and values is not None
    return keys_t, values


@pytest.mark.parametrize(
    ("rows", "audio", "frames"),
    [(1, 1, 1500), (5, 1, 1500), (9, 1, 13), (3, 3, 1025), (2, 2, 7), (1, 1, 1)],
)
def test_attention_over_float16_audio_is_the_float32_kernels_on_the_widened_values(
    rows: int, audio: int, frames: int
) -> None:
    rng = np.random.default_rng(rows * 100 + frames)
    keys_t, values = _half_audio(rng, audio, 3, frames)
    q = (rng.standard_normal((rows, 3 * 64)) * 0.3).astype(np.float32)
    got = native_kernels.attend_rows(q, keys_t, values, np.empty_like(q))
    widened = native_kernels.attend_rows(q, keys_t.astype(np.float32), values.astype(np.float32), np.empty_like(q))
    np.testing.assert_array_equal(got, widened)


def test_float16_audio_of_another_head_size_or_mixed_types_is_refused() -> None:
    rng = np.random.default_rng(2)
    keys_t = rng.standard_normal((1, 2, 32, 10)).astype(np.float16)
    values = rng.standard_normal((1, 2, 10, 32)).astype(np.float16)
    q = np.zeros((1, 64), np.float32)
    with pytest.raises(ValueError, match="keys_t: expected"):
        native_kernels.attend_rows(q, keys_t, values, np.empty_like(q))
    k64, v64 = _half_audio(rng, 1, 1, 10)
    with pytest.raises(ValueError, match="values: expected"):
        native_kernels.attend_rows(q, k64, v64.astype(np.float32), np.empty_like(q))


def test_the_c_entry_refuses_float16_audio_with_heads_not_64_wide() -> None:
    keys_t = np.zeros((1, 1, 32, 8), np.float16)
    values = np.zeros((1, 1, 8, 32), np.float16)
    q, out, scratch = np.ones((1, 32), np.float32), np.full((1, 32), 5.0, np.float32), np.empty(8, np.float32)
    args = native_kernels._AttendArgs(
        ctypes.sizeof(native_kernels._AttendArgs), q.ctypes.data, keys_t.ctypes.data, values.ctypes.data,
        out.ctypes.data, scratch.ctypes.data, 1, 1, 32, 8, 32, 32, 0, 8, 1,
    )  # fmt: skip
    assert native_kernels._library().macb_cpu_attend_rows(ctypes.byref(args)) == 1
    assert (out == 5.0).all()
