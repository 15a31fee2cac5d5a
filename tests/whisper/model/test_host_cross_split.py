"""Host decoder steps with cross-attention's heads split between the host workers
(MLX_AUDIO_COREML_SPLIT_CROSS=1) give the same logits as on one thread, for one row (greedy) and
for beams sharing one audio row. Both ways on the numpy route: our C kernel
(test_host_native_attention.py) sums in another order."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from model_helpers import beams_after_prefill, random_model, tiny_dims

from mlx_audio_coreml.cpu import host_math
from mlx_audio_coreml.whisper import host_decoder

pytestmark = pytest.mark.skipif(not host_math.available(mx.float32), reason="the host path needs MLX on the CPU")


@pytest.mark.parametrize("int8", [False, True])
@pytest.mark.parametrize("beams", [1, 3])
def test_split_cross_attention_gives_the_same_logits(int8: bool, beams: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLX_AUDIO_COREML_HOST_THREADS", "2")
    monkeypatch.setattr(host_decoder, "_native_attention", lambda k_t, v: False)  # numpy both ways
    model = random_model(tiny_dims())
    model.decoder.host_int8 = int8
    tokens, many, shared = beams_after_prefill(model, beams)
    logits = {}
    for split in (False, True):
        monkeypatch.setattr(host_decoder, "_SPLIT_CROSS", split)
        out, _, _ = model.decoder(tokens, many, shared)
        logits[split] = np.array(out)
    np.testing.assert_array_equal(logits[True], logits[False])


def test_folded_query_scale_is_the_models_float32_scale() -> None:
    """The queries' 1/sqrt(Dh) goes into the weights; for Whisper's Dh = 64 it is 1/8, a power of two,
    so the scaled weights give exactly the scaled queries."""
    assert host_decoder.query_scale(384, 6) == 0.125
    assert host_decoder.query_scale(100, 4) == float(np.float32(0.2))
