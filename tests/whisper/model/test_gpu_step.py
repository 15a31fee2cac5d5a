"""The static-cache decoder step (whisper/gpu_step.py) computes what the dynamic step computes.

Run on the CPU with tiny random models: compiled and eager, the static step's logits equal the
dynamic `DecoderStep`'s at every position, and the product's token loop (`sample_tokens`, greedy,
with logit filters) picks the same tokens with either step; beam reordering keeps rows aligned; a compiled step stays small (graph nodes
per layer).
"""

from __future__ import annotations

import io
import re

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import random_model, tiny_dims

from mlx_audio_coreml.errors import ShapeConversionFailed
from mlx_audio_coreml.whisper.gpu_step import StaticCache, StaticDecoderStep, decoder_step, to_static
from mlx_audio_coreml.whisper.logit_filters import SuppressBlank
from mlx_audio_coreml.whisper.sampling import DecoderStep, sample_tokens


def prefilled(batch: int, seed: int, prefix_len: int = 3) -> tuple:
    dims = tiny_dims(n_text_ctx=32)
    model = random_model(dims, seed=seed)
    rng = np.random.default_rng(seed + 1)
    features = mx.array(rng.standard_normal((batch, dims.n_audio_ctx, dims.n_audio_state)).astype(np.float32))
    prefix = mx.array(rng.integers(0, dims.n_vocab, (batch, prefix_len)).astype(np.int32))
    logits, cache, _ = model.decoder(prefix, features)
    return model, features, prefix, logits[:, -1, :], cache


@pytest.mark.parametrize(("compiled", "batch"), [(True, 2), (False, 2), (True, 6)])  # 6 rows: written by slice_update
def test_static_step_logits_equal_the_dynamic_steps_at_every_position(compiled: bool, batch: int) -> None:
    model, features, _, _, cache = prefilled(batch=batch, seed=3)
    dynamic, static = DecoderStep(model, features), StaticDecoderStep(model, features, compiled=compiled)
    rng = np.random.default_rng(5)
    dyn_cache, st_cache = cache, cache
    for _ in range(12):
        token = mx.array(rng.integers(0, model.dims.n_vocab, (batch, 1)).astype(np.int32))
        want, dyn_cache = dynamic(token, dyn_cache)
        got, st_cache = static(token, st_cache)
        assert isinstance(st_cache, StaticCache)
        np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-4, atol=1e-4)
    assert st_cache.length == 15 and int(st_cache.offset.item()) == 15


def test_greedy_loop_picks_the_same_tokens_with_either_step() -> None:
    model, features, prefix, last, cache = prefilled(batch=1, seed=7)
    filters = [SuppressBlank([0, 1], model.dims.n_vocab)]
    runs = []
    for step in (DecoderStep(model, features), StaticDecoderStep(model, features)):
        tokens, sums = sample_tokens(step, last, cache, prefix, filters, temperature=0.0, eot=-1, n_steps=20)
        runs.append((tokens, sums))
    np.testing.assert_array_equal(runs[1][0], runs[0][0])
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-5)
    assert runs[0][0].shape == (1, 23)


def test_reorder_takes_the_chosen_rows_of_the_static_cache() -> None:
    model, features, _, _, cache = prefilled(batch=3, seed=11)
    static = StaticDecoderStep(model, features)
    token = mx.array([[4], [5], [6]], dtype=mx.int32)
    _, st_cache = static(token, cache)
    rows = mx.array([2, 2, 0])
    picked = static.reorder(st_cache, rows)
    for full, part in zip(st_cache.self_k, picked.self_k, strict=True):
        np.testing.assert_array_equal(np.array(part), np.array(full)[[2, 2, 0]])
    assert picked.cross_k is st_cache.cross_k  # the audio keys are shared, never gathered


def test_a_step_past_the_context_is_refused() -> None:
    model, features, _, _, cache = prefilled(batch=1, seed=13, prefix_len=31)
    static = StaticDecoderStep(model, features)
    _, st_cache = static(mx.array([[1]], dtype=mx.int32), cache)  # position 31: the last one
    with pytest.raises(ShapeConversionFailed):
        static(mx.array([[1]], dtype=mx.int32), st_cache)


def test_the_cpu_keeps_the_dynamic_step() -> None:
    model, features, *_ = prefilled(batch=1, seed=17)
    assert isinstance(decoder_step(model, features), DecoderStep)


def graph_nodes(outputs: list[mx.array]) -> int:
    """Nodes of the graph behind `outputs` (up to evaluated arrays): the primitives MLX dispatches."""
    text = io.StringIO()
    mx.export_to_dot(text, *outputs)
    return len(re.findall(r'label ="', text.getvalue()))


def step_nodes(n_layer: int) -> int:
    dims = tiny_dims(n_text_ctx=32, n_text_layer=n_layer)
    model = random_model(dims, seed=1)
    features = mx.random.normal((1, dims.n_audio_ctx, dims.n_audio_state))
    _, cache, _ = model.decoder(mx.array([[1, 2]], dtype=mx.int32), features)
    static = to_static(cache, 32)
    arrays = [static.offset, *static.self_k, *static.self_v, *static.cross_k, *static.cross_v]
    mx.eval(arrays)
    return graph_nodes(list(StaticDecoderStep(model, features).program.run(mx.array([[3]], dtype=mx.int32), *arrays)))


def test_a_compiled_step_dispatches_few_primitives_per_layer() -> None:
    """At batch 1 on a GPU each primitive costs ~10 us of host work: the step is written for few.
    On the CPU (layer norm and attention decomposed) a layer measured 47 nodes; the first static
    step (3-D hidden state, a transpose per product, positions made per call) had 79."""
    per_layer = (step_nodes(4) - step_nodes(2)) / 2
    assert per_layer <= 50, per_layer


def test_windows_of_one_model_share_one_compiled_step() -> None:
    """Tracing a compiled step costs more than a window's tokens save: it is made once per decoder."""
    model, features, *_ = prefilled(batch=1, seed=19)
    first, second = StaticDecoderStep(model, features), StaticDecoderStep(model, features * 2)
    assert first.program is second.program
    other, *_ = prefilled(batch=1, seed=23)
    assert StaticDecoderStep(other, features).program is not first.program
