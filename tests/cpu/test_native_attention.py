"""Our C attention kernels (cpu_kernels/attend_rows.c through cpu/native_kernels.py) against a
float64 numpy reference. Cross-attention (`attend_rows`): every path (one row, rows sharing audio in groups of four, rows with
audio of their own, head sizes other than 64, several blocks of frames), strided rows, softmax
underflow, and bad arguments refused before any memory is touched. Self-attention against a
decoder's cache (`attend_cache`): views of a buffer with spare room, as host_cache.HostKV keeps."""

from __future__ import annotations

import ctypes
import os
import shutil

import numpy as np
import pytest

from mlx_audio_coreml.cpu import native_kernels
from mlx_audio_coreml.errors import CPUKernelFailed

built = pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)")


def test_built_wherever_a_c_compiler_is() -> None:
    """CI has a compiler: a silently missing library would skip every test below."""
    if not (os.environ.get("CI") and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("only checked in CI, where scripts/setup.sh builds the package with a C compiler")
    assert native_kernels.library_path().exists(), "libmacb_cpu was not built"
    assert native_kernels.available()


def _audio(
    rng: np.random.Generator, audio: int, heads: int, head_dim: int, frames: int
) -> tuple[np.ndarray, np.ndarray]:
    keys_t = rng.standard_normal((audio, heads, head_dim, frames)).astype(np.float32)
    values = rng.standard_normal((audio, heads, frames, head_dim)).astype(np.float32)
    return keys_t, values


def _reference(q: np.ndarray, keys_t: np.ndarray, values: np.ndarray) -> np.ndarray:
    rows = q.shape[0]
    _, heads, head_dim, frames = keys_t.shape
    by_head = q.astype(np.float64).reshape(rows, heads, 1, head_dim)
    scores = by_head @ keys_t.astype(np.float64)  # (B, H, 1, S), the audio broadcast over rows
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    return (weights @ values.astype(np.float64)).reshape(rows, heads * head_dim)


@built
@pytest.mark.parametrize("rows", [1, 2, 4, 5, 9])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize(("head_dim", "frames"), [(64, 1500), (64, 2100), (64, 1), (48, 37), (13, 300)])
def test_matches_the_reference(rows: int, shared: bool, head_dim: int, frames: int) -> None:
    rng = np.random.default_rng(rows * 1000 + frames + head_dim)
    heads = 3
    keys_t, values = _audio(rng, 1 if shared else rows, heads, head_dim, frames)
    q = (rng.standard_normal((rows, heads * head_dim)) * 0.2).astype(np.float32)
    out = native_kernels.attend_rows(q, keys_t, values, np.full_like(q, np.nan))
    np.testing.assert_allclose(out, _reference(q, keys_t, values), rtol=2e-5, atol=2e-5)


@built
def test_strided_rows_and_peaked_softmax() -> None:
    """Rows of a wider block (the stride is read) and scores 200 apart (exp underflows to 0)."""
    rng = np.random.default_rng(7)
    rows, heads, head_dim, frames = 5, 2, 64, 500
    keys_t, values = _audio(rng, 1, heads, head_dim, frames)
    wide = (rng.standard_normal((rows, 3 * heads * head_dim)) * 4).astype(np.float32)
    q = wide[:, : heads * head_dim]  # strided: every row 3x as far as its width
    out_block = np.full((rows, 2 * heads * head_dim), -1.0, np.float32)
    out = out_block[:, heads * head_dim :]
    native_kernels.attend_rows(q, keys_t, values, out)
    np.testing.assert_allclose(out, _reference(q, keys_t, values), rtol=2e-5, atol=2e-5)
    assert (out_block[:, : heads * head_dim] == -1.0).all(), "wrote outside its rows"


@built
def test_bad_shapes_are_refused() -> None:
    rng = np.random.default_rng(0)
    keys_t, values = _audio(rng, 1, 2, 64, 10)
    q = np.zeros((3, 128), np.float32)
    with pytest.raises(ValueError, match="do not chain"):
        native_kernels.attend_rows(q, keys_t, values[:, :, :5], np.empty_like(q))
    with pytest.raises(ValueError, match="do not chain"):  # two audio rows for three queries
        native_kernels.attend_rows(q, *_audio(rng, 2, 2, 64, 10), np.empty_like(q))
    with pytest.raises(ValueError, match="q: expected"):
        native_kernels.attend_rows(q.astype(np.float64), keys_t, values, np.empty_like(q))
    with pytest.raises(ValueError, match="keys_t: expected"):
        native_kernels.attend_rows(q, np.asfortranarray(keys_t), values, np.empty_like(q))
    with pytest.raises(ValueError, match="rows"):
        native_kernels.attend_rows(q, keys_t, values, np.empty((2, 128), np.float32))


@built
@pytest.mark.parametrize("field", ["size", "q", "rows", "head_dim", "scratch_floats"])
def test_the_c_entry_refuses_bad_arguments_without_writing(field: str) -> None:
    """The kernel's own checks, through the raw struct: status 1 and the output untouched."""
    rng = np.random.default_rng(1)
    keys_t, values = _audio(rng, 1, 1, 64, 8)
    q, out, scratch = np.ones((1, 64), np.float32), np.full((1, 64), 5.0, np.float32), np.empty(8, np.float32)
    args = native_kernels._AttendArgs(
        ctypes.sizeof(native_kernels._AttendArgs), q.ctypes.data, keys_t.ctypes.data, values.ctypes.data,
        out.ctypes.data, scratch.ctypes.data, 1, 1, 64, 8, 64, 64, 0, 8,
    )  # fmt: skip
    bad = {"size": 8, "q": None, "rows": 0, "head_dim": native_kernels.MAX_HEAD_DIM + 1, "scratch_floats": 7}
    setattr(args, field, bad[field])
    assert native_kernels._library().macb_cpu_attend_rows(ctypes.byref(args)) == 1
    assert (out == 5.0).all()
    with pytest.raises(CPUKernelFailed) as failed:
        native_kernels.checked(1, "macb_cpu_attend_rows")
    assert str(failed.value).endswith("(1: bad argument, 3: unsupported on this CPU)")


def test_turned_off_by_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_AUDIO_COREML_CPU_KERNELS", "none")
    native_kernels._library.cache_clear()
    try:
        assert not native_kernels.available()
        with pytest.raises(RuntimeError, match="not available"):
            block, row = np.zeros((1, 1, 1, 1), np.float32), np.zeros((1, 1), np.float32)
            native_kernels.attend_rows(row, block, block, row)
    finally:
        monkeypatch.undo()
        native_kernels._library.cache_clear()


@built
@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize(("head_dim", "length"), [(64, 1), (64, 300), (24, 17)])
def test_cache_attention_matches_the_reference(rows: int, head_dim: int, length: int) -> None:
    rng = np.random.default_rng(rows + length)
    heads, capacity = 3, length + 40  # HostKV's buffer has room to grow: its view is strided
    keys = rng.standard_normal((rows, heads, capacity, head_dim)).astype(np.float32)[:, :, :length]
    values = rng.standard_normal((rows, heads, capacity, head_dim)).astype(np.float32)[:, :, :length]
    qkv = (rng.standard_normal((rows, 3 * heads * head_dim)) * 0.3).astype(np.float32)
    q = qkv[:, : heads * head_dim]  # the fused projection's first third, as the decoder passes it
    out = native_kernels.attend_cache(q, keys, values, np.full((rows, heads * head_dim), np.nan, np.float32))
    wide_q = q.astype(np.float64).reshape(rows, heads, 1, head_dim)
    scores = wide_q @ keys.astype(np.float64).transpose(0, 1, 3, 2)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = (weights @ values.astype(np.float64)).reshape(rows, heads * head_dim)
    np.testing.assert_allclose(out, expected, rtol=2e-5, atol=2e-5)


@built
def test_cache_attention_refuses_mismatched_blocks() -> None:
    keys = np.zeros((2, 2, 5, 8), np.float32)
    q, out = np.zeros((2, 16), np.float32), np.zeros((2, 16), np.float32)
    with pytest.raises(ValueError, match="values"):
        native_kernels.attend_cache(q, keys, np.zeros((2, 2, 4, 8), np.float32), out)
    with pytest.raises(ValueError, match="keys"):
        native_kernels.attend_cache(q, keys[..., ::2], keys[..., ::2], out)
    with pytest.raises(ValueError, match="keys"):
        native_kernels.attend_cache(q[:1], keys, keys, out)
