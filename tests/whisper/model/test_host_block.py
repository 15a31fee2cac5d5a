"""A host decoder step's blocks in one C call each (whisper/host_block.py, cpu_kernels/decoder_block.c)
give the per-kernel route's logits and caches bit for bit: greedy and beams, head sizes 8 and 64,
cross-attention split over the workers (through the pool, or the step's C team) or not, over enough
steps that the cache buffers grow."""

from __future__ import annotations

import ctypes

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import beams_after_prefill, random_model, tiny_dims

from mlx_audio_coreml.cpu import half_audio, host_math, native_block, native_kernels
from mlx_audio_coreml.errors import CPUKernelFailed
from mlx_audio_coreml.whisper import host_block, host_decoder
from mlx_audio_coreml.whisper.host_cache import HostKV

pytestmark = [
    pytest.mark.skipif(not host_math.available(mx.float32), reason="the host path needs MLX on the CPU"),
    pytest.mark.skipif(not native_kernels.available(), reason="libmacb_cpu is not built (no C compiler)"),
]

WIDE = {"n_audio_state": 128, "n_audio_head": 2, "n_text_state": 128, "n_text_head": 2}  # head size 64
STEPS = 70  # past the cache's first 64 rows of room: the buffers grow once


def _counting_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    runs: list[int] = []
    real = native_block.BlockCall.run

    def counted(*args: object) -> None:
        runs.append(1)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(native_block.BlockCall, "run", counted)
    return runs


def _steps(model, tokens, features, cache, in_c: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list, list]:
    """STEPS decoder steps from `cache`, each row feeding its own argmax back; logits per step and
    the last cache as numpy."""
    if not in_c:
        monkeypatch.setattr(host_block, "applies", lambda w: False)
    runs = _counting_blocks(monkeypatch)
    logits = []
    for _ in range(STEPS):
        out, cache, _ = model.decoder(tokens, features, cache)
        logits.append(np.array(out))
        tokens = mx.array(logits[-1][:, -1].argmax(-1)[:, None].astype(np.int32))
    monkeypatch.undo()
    assert bool(runs) == in_c, "the steps did not take the route asked for"
    return logits, [np.array(kv) for self_kv, _ in cache for kv in self_kv]


@pytest.mark.parametrize("split", [False, True])
@pytest.mark.parametrize("beams", [1, 5])
@pytest.mark.parametrize("head_dim", [8, 64])
def test_blocks_in_c_give_the_per_kernel_route_bit_for_bit(
    head_dim: int, beams: int, split: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    monkeypatch.setattr(host_decoder, "_SPLIT_CROSS", split)
    model = random_model(tiny_dims(n_text_ctx=STEPS + 8, **(WIDE if head_dim == 64 else {})))
    model.decoder.host_int8 = True
    tokens, features, cache = beams_after_prefill(model, beams)
    if head_dim == 64 and half_audio.supported():  # int8 keeps its audio float16 (cpu/half_audio.py)
        assert {a.dtype for _, cross in cache for a in cross} == {mx.float16}
    per_kernel, kernel_cache = _steps(model, tokens, features, cache, False, monkeypatch)
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    monkeypatch.setattr(host_decoder, "_SPLIT_CROSS", split)
    in_c, c_cache = _steps(model, tokens, features, cache, True, monkeypatch)
    for got, expected in zip(in_c, per_kernel, strict=True):
        np.testing.assert_array_equal(got, expected)
    for got, expected in zip(c_cache, kernel_cache, strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("beams", [1, 5])
@pytest.mark.parametrize("head_dim", [8, 64])
def test_float32_blocks_in_c_agree_with_the_per_kernel_route(
    head_dim: int, beams: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """float32: the block's products are oneDNN's 1x1 convolutions where the per-kernel route calls
    BLAS, so the two agree to float32 rounding (not bit for bit), step after step."""
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    model = random_model(tiny_dims(n_text_ctx=STEPS + 8, **(WIDE if head_dim == 64 else {})))
    model.decoder.host_int8 = False
    tokens, features, cache = beams_after_prefill(model, beams)
    per_kernel, kernel_cache = _steps(model, tokens, features, cache, False, monkeypatch)
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    in_c, c_cache = _steps(model, tokens, features, cache, True, monkeypatch)
    for got, expected in zip(in_c, per_kernel, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(got.argmax(-1), expected.argmax(-1))
    for got, expected in zip(c_cache, kernel_cache, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("int8", [True, False])
@pytest.mark.parametrize("beams", [1, 5])
def test_products_cut_in_column_pieces_for_the_team_give_the_whole_products_results(
    beams: int, int8: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block products whose weights are large enough (here: all; by default float32 only) run as
    column pieces on the step's team: every output column is the same arithmetic as in the whole
    product, so the steps' logits and caches are the same bits, int8 and float32."""
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    model = random_model(tiny_dims(n_text_ctx=STEPS + 8, **WIDE))
    model.decoder.host_int8 = int8
    tokens, features, cache = beams_after_prefill(model, beams)
    whole, whole_cache = _steps(model, tokens, features, cache, True, monkeypatch)
    assert model.decoder.host_weights.layers[0].qkv._few_rows_pieces == 1  # 196 KB of weights: whole
    model.decoder.host_weights = None  # prepared again, now cut
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    monkeypatch.setattr(host_decoder, "_SPLIT_BLOCK_BYTES", 0)
    monkeypatch.setattr(host_decoder, "_SPLIT_INT8_BLOCKS", True)  # int8 too (off by default)
    in_pieces, pieces_cache = _steps(model, tokens, features, cache, True, monkeypatch)
    layer = model.decoder.host_weights.layers[0]
    assert all(p._few_rows_pieces == 2 for p in (layer.qkv, layer.out, layer.mlp1, layer.mlp2))
    assert layer.qkv._team_pieces.by_rows[beams] is not None  # the block ran the pieces
    for got, expected in zip(in_pieces + pieces_cache, whole + whole_cache, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_by_default_only_float32_blocks_are_cut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    monkeypatch.setattr(host_decoder, "_SPLIT_BLOCK_BYTES", 0)
    for int8, pieces in ((False, 2), (True, 1)):
        model = random_model(tiny_dims(**WIDE))
        model.decoder.host_int8 = int8
        layers, _ = host_decoder.prepared_weights(model.decoder, int8=int8)
        assert layers[0].mlp1._few_rows_pieces == pieces


def test_a_layer_is_cut_before_its_first_few_row_product() -> None:
    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = True
    tokens, features, cache = beams_after_prefill(model, 1)
    model.decoder(tokens, features, cache)
    with pytest.raises(RuntimeError, match="before the layer's first"):
        model.decoder.host_weights.layers[0].qkv.split_for_team(2)


def test_float32_decoders_too_large_for_a_second_copy_keep_the_per_kernel_route(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = False
    assert host_decoder.in_one_call(model.decoder)
    monkeypatch.setattr(host_decoder, "_FLOAT32_BLOCK_BYTES", 0)  # as medium's and large's decoders
    assert not host_decoder.in_one_call(model.decoder)
    tokens, features, cache = beams_after_prefill(model, 1)
    runs = _counting_blocks(monkeypatch)
    model.decoder(tokens, features, cache)
    assert runs == []


def test_a_product_whose_source_moved_is_pointed_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A several-row call through `_few` (an output given) points the primitive's source at another
    buffer; the next step's block must point it back before writing its bytes to its own buffer."""
    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = True
    tokens, features, cache = beams_after_prefill(model, 5)
    expected = np.array(model.decoder(tokens, features, cache)[0])
    layer = model.decoder.host_weights.layers[0]
    rows = np.random.default_rng(0).standard_normal((5, 128)).astype(np.float32)
    layer.qkv(rows, out=np.empty((5, 384), np.float32))  # `_few`: the source moves off the thread's buffer
    bound = layer.qkv._direct[5].bound()
    assert bound.src_at != bound.own_at
    runs = _counting_blocks(monkeypatch)
    got = np.array(model.decoder(tokens, features, cache)[0])
    assert len(runs) == 2 and bound.src_at == bound.own_at
    np.testing.assert_array_equal(got, expected)


def test_the_c_entry_point_refuses_bad_arguments() -> None:
    library = native_block._declared()
    args = native_block._BlockArgs()
    assert library.macb_cpu_decoder_block(ctypes.byref(args)) == 1  # size 0
    args.size = ctypes.sizeof(native_block._BlockArgs)
    assert library.macb_cpu_decoder_block(ctypes.byref(args)) == 1  # no rows, no buffers
    with pytest.raises(CPUKernelFailed, match="macb_cpu_decoder_block"):
        native_kernels.checked(1, "macb_cpu_decoder_block")


def test_block_calls_check_shapes_before_c_sees_them() -> None:
    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = True
    tokens, features, cache = beams_after_prefill(model, 1)
    model.decoder(tokens, features, cache)
    call = host_block._made(model.decoder.host_weights.layers[0], 1)
    assert call is not None
    with pytest.raises(ValueError, match="x"):
        call.run(np.zeros((2, 128), np.float32), np.zeros((1, 128), np.float32), np.zeros((1, 128), np.float32), 15)
    storage = np.zeros((1, 2, 8, 64), np.float32)
    with pytest.raises(ValueError, match="cache storage"):
        call.set_cache(storage, storage, 9)  # past the capacity
    with pytest.raises(ValueError, match="audio"):
        call.set_audio(np.zeros((1, 2, 64, 16), np.float32), np.zeros((1, 2, 64, 16), np.float32))
    with pytest.raises(ValueError, match="do not chain"):
        native_block.BlockCall(
            call.products[::-1], [(np.ones(128, np.float32), np.zeros(128, np.float32), 1e-5)] * 3, 2, 1
        )


def test_claimed_rows_are_the_callers_to_write() -> None:
    rows = np.arange(2 * 3 * 4 * 8, dtype=np.float32).reshape(2, 3, 4, 8)
    cache = HostKV.from_rows(rows, limit=16)
    grown = cache.claimed(1, limit=16)
    assert grown.length == 5 and grown.storage().shape[2] >= 5
    grown.storage()[:, :, 4] = 7.0
    np.testing.assert_array_equal(grown.view()[:, :, :4], rows)
    assert (grown.view()[:, :, 4] == 7.0).all()
    again = cache.claimed(1, limit=16)  # not the buffer's newest value any more: a copy
    assert again.storage() is not grown.storage()
    np.testing.assert_array_equal(again.view()[:, :, :4], rows)


@pytest.mark.parametrize("beams", [1, 3])
def test_a_decoding_loop_enlists_its_team_once(beams: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The greedy and beam loops open the step team for the whole loop (one helper sent in), and
    the steps inside use it; the tokens are the per-kernel route's."""
    from mlx_audio_coreml.cpu import pool as host_pool
    from mlx_audio_coreml.whisper.beam import BeamSearch
    from mlx_audio_coreml.whisper.sampling import DecoderStep, sample_tokens

    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    model = random_model(tiny_dims(**WIDE))
    model.decoder.host_int8 = True
    tokens, features, cache = beams_after_prefill(model, beams)
    step = DecoderStep(model, features)
    logits = step(tokens, cache)[0]  # the first step's logits, as a prefill would give them

    def decode(cache_now: object) -> object:
        if beams == 1:
            return sample_tokens(step, logits, cache_now, tokens, [], temperature=0.0, eot=299, n_steps=6)[0]
        found = BeamSearch(beams, eot=299).run(step, logits, cache_now, tokens, [], n_audio=1, n_steps=6)
        return [seq for seq, _ in found[0]]

    sent: list[int] = []
    real = host_pool.in_background
    monkeypatch.setattr(host_pool, "in_background", lambda work, copies: sent.append(1) or real(work, copies))
    runs = _counting_blocks(monkeypatch)
    with_team = decode(beams_after_prefill(model, beams)[2])
    assert sent == [1] and len(runs) >= 2 * 5  # two blocks a step, five steps after the first
    monkeypatch.undo()
    monkeypatch.setattr(host_block, "applies", lambda w: False)
    monkeypatch.setenv("MLX_AUDIO_COREML_STEP_TEAM", "0")
    assert np.array_equal(
        np.array(with_team, dtype=object), np.array(decode(beams_after_prefill(model, beams)[2]), dtype=object)
    )
