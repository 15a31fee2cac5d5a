"""A window that never ends stops where CTranslate2's does: the same most tokens per window.

faster-whisper passes `max_length=448` to CTranslate2, whose Whisper decode (src/models/whisper.cc)
allows min(448 // 2, 448 - start_step) decoding steps, start_step being the prompt's length less
its last token: 224 without a previous-text prompt, fewer with the longest one (223 tokens after
<|startofprev|>, then the SOT sequence: 222 on base, 223 on tiny.en with <|notimestamps|>).
openai-whisper (224 samples, stopping past 448 tokens) gives the same count. Ours
(DecodingTask.sample_len) must give exactly CTranslate2's count. Each case forbids EOT in both
engines (suppress_tokens), so greedy decoding runs to the limit and the count is the limit itself.
"""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from ct2_steps import first_window_features
from decode_helpers import JFK

from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.tokenizer import get_tokenizer

pytestmark = pytest.mark.realweights
slow = pytest.mark.slow

CT2_MAX_LENGTH = 448  # faster-whisper's WhisperModel.max_length, passed to every generate call
PROMPT_TEXT = " And so my fellow Americans, ask not what your country can do for you."


@pytest.fixture(scope="module")
def ct2_tiny_en():
    ctranslate2 = pytest.importorskip("ctranslate2")
    from speech_data import real_model_dir

    path = real_model_dir("tiny.en")
    if path is None:
        pytest.skip("tiny.en CTranslate2 weights not installed")
    # one thread: on this shared 2-core machine two threads took 12 s of CPU for 224 steps, one 2.6 s
    return ctranslate2.models.Whisper(str(path), device="cpu", compute_type="float32", intra_threads=1)


@pytest.fixture(scope="module")
def jfk_features(tiny_en_bundle):
    return first_window_features(tiny_en_bundle, str(JFK))


def _never_ending(bundle, prompt_tokens: int, without_timestamps: bool) -> DecodingTask:
    tokenizer = get_tokenizer(bundle, multilingual=False, language="en", task="transcribe")
    words = tokenizer.encode(PROMPT_TEXT)
    prompt = tuple((words * (prompt_tokens // len(words) + 1))[:prompt_tokens]) if prompt_tokens else None
    options = DecodingOptions(
        prompt=prompt, suppress_tokens=(-1, tokenizer.eot), without_timestamps=without_timestamps
    )  # greedy
    return DecodingTask(bundle.model, tokenizer, options, bundle.config)


def _ct2_tokens(ct2_model, features: mx.array, task: DecodingTask) -> list[int]:
    import ctranslate2

    storage = ctranslate2.StorageView.from_array(np.array(features.astype(mx.float32)))
    result = ct2_model.generate(
        storage, [list(task.initial_tokens)], beam_size=1, max_length=CT2_MAX_LENGTH, suppress_blank=True,
        suppress_tokens=[-1, task.tokenizer.eot], max_initial_timestamp_index=50,
    )[0]  # fmt: skip
    return list(result.sequences_ids[0])


@pytest.mark.parametrize(
    "prompt_tokens, without_timestamps",
    [
        pytest.param(0, True, marks=slow),
        (223, True),  # the limit is below 224 here: the case a fixed 224 would get wrong
        pytest.param(0, False, marks=slow),
        pytest.param(223, False, marks=slow),
    ],
    ids=["no-prompt", "longest-prompt", "no-prompt-timestamps", "longest-prompt-timestamps"],
)
def test_a_window_without_end_stops_at_ctranslate2s_length(
    tiny_en_bundle, ct2_tiny_en, jfk_features, prompt_tokens, without_timestamps
):
    task = _never_ending(tiny_en_bundle, prompt_tokens, without_timestamps)
    start_step = len(task.initial_tokens) - 1
    limit = min(CT2_MAX_LENGTH // 2, CT2_MAX_LENGTH - start_step)
    theirs = _ct2_tokens(ct2_tiny_en, jfk_features, task)
    ours = list(task.run(jfk_features)[0].tokens)
    assert len(theirs) == limit  # CTranslate2 ran to its limit: the case tests the limit
    assert task.sample_len == limit
    assert ours == theirs
