"""Host decoder steps for several rows of one window (beams, samples): the audio keys/values may
stay one row (decoding.DecodingTask._repeat_cache), and the step gives what it gives with a copy
of them per row."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import random_mel, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.whisper.sampling import repeat_rows

pytestmark = pytest.mark.skipif(not host_math.available(mx.float32), reason="the host path needs MLX on the CPU")


@pytest.mark.parametrize("int8", [False, True])
def test_rows_sharing_one_audio_row_match_rows_with_their_own_copy(int8: bool) -> None:
    model = random_model(tiny_dims())
    model.decoder.host_int8 = int8
    features = model.encoder(random_mel(model.dims))
    _, cache, _ = model.decoder(mx.array([[1, 2, 3]], dtype=mx.int32), features)  # the prefill, one row
    tokens = mx.array([[4], [5], [6]], dtype=mx.int32)  # three beams
    copied = repeat_rows(cache, 3)
    shared = [(repeat_rows(self_kv, 3), cross) for self_kv, cross in cache]
    assert shared[0][1][0].shape[0] == 1 and copied[0][1][0].shape[0] == 3
    many = mx.repeat(features, 3, axis=0)
    reference, _, _ = model.decoder(tokens, many, copied)
    logits, _, _ = model.decoder(tokens, many, shared)
    np.testing.assert_allclose(np.array(logits), np.array(reference), rtol=1e-5, atol=1e-5)
