"""One session, many callers at once: Core ML calls hold their own output buffers (no session-wide
buffer or lock), so callers overlap instead of queueing, and concurrent transcriptions agree."""

from __future__ import annotations

import threading
import time

import mlx.core as mx
import pytest
from loading_helpers import JFK, REAL_STORE

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.coreml.runtime import ModelDescription, PredictResult, TensorSpec
from mlx_audio_coreml.encoders import CoreMLAudioEncoder, FallbackEncoder
from mlx_audio_coreml.errors import PredictionFailed
from mlx_audio_coreml.options import ModelLoadingOptions
from mlx_audio_coreml.whisper.encoder_layouts import detect_layout


class _SlowModel:
    """A Core ML model (numpy entry, like apple/coremltools) that takes 0.3 s per prediction and
    records when each call entered and left, and which output buffer it was handed."""

    description = ModelDescription(
        inputs=(TensorSpec("mel", "float32", (1, 80, 3000)),),
        outputs=(TensorSpec("encoder_states", "float32", (1, 1500, 64)),),
    )
    neural_engine_compiled = False

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self.buffers: list[int] = []
        self.fail = False  # from now on, predictions fail at once
        self.closed_at: float | None = None
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def predict(self, inputs, outputs=None):
        if self.fail:
            raise PredictionFailed("the Neural Engine went away")
        entered = time.monotonic()
        self.entered.set()
        buffer = outputs["encoder_states"]
        buffer[...] = float(inputs["mel"][0, 0, 0])  # written in place, as Core ML does with backings
        time.sleep(0.3)
        with self._lock:
            self.intervals.append((entered, time.monotonic()))
            self.buffers.append(id(buffer))
        return PredictResult({"encoder_states": buffer}, written_in_place=frozenset({"encoder_states"}))

    def close(self) -> None:
        self.closed_at = time.monotonic()


class _Zeros:
    """The MLX side: zeros of the states' shape."""

    backend = "mlx"

    def encode(self, mel: mx.array) -> mx.array:
        return mx.zeros((mel.shape[0], 1500, 64))


def test_two_callers_encoder_calls_overlap_in_time():
    model = _SlowModel()
    switch = FallbackEncoder(None)  # no MLX needed: Core ML answers every call
    switch.use_coreml(CoreMLAudioEncoder(model, layout=detect_layout(model.description)))
    results: dict[int, mx.array] = {}

    def call(value: int) -> None:
        results[value] = switch.encode(mx.full((1, 80, 3000), float(value)))

    threads = [threading.Thread(target=call, args=(v,)) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    (first_in, first_out), (second_in, second_out) = sorted(model.intervals)
    assert second_in < first_out  # the second call entered predict before the first left it
    assert len(set(model.buffers)) == 2  # each call wrote into its own output buffer
    assert float(results[1].max()) == 1.0 and float(results[2].min()) == 2.0  # and read back its own


def test_a_model_switched_out_is_closed_only_after_its_calls_in_flight_return():
    model = _SlowModel()
    switch = FallbackEncoder(_Zeros())
    switch.use_coreml(CoreMLAudioEncoder(model, layout=detect_layout(model.description)))
    slow = threading.Thread(target=lambda: switch.encode(mx.ones((1, 80, 3000))))  # MLX streams are per thread
    slow.start()
    assert model.entered.wait(30)  # the slow call is inside predict now

    model.fail = True
    states = switch.encode(mx.ones((1, 80, 3000)))  # fails on Core ML: answered by MLX

    assert switch.backend == "mlx" and float(mx.abs(states).max()) == 0.0
    assert model.closed_at is None  # not closed under the prediction still running
    slow.join()
    assert model.closed_at is not None and model.closed_at >= model.intervals[0][1]


@pytest.mark.realweights
@pytest.mark.slow  # eight transcriptions of 11 s of speech at once on a 2-core machine: minutes
def test_eight_threads_transcribe_with_one_session_identically():
    if not (REAL_STORE / "tiny.en" / "model.bin").is_file():
        pytest.skip("real tiny.en weights are not installed (scripts/fetch_models.sh)")
    from mlx_audio_coreml.whisper.session import WhisperSession

    session = WhisperSession.from_pretrained("tiny.en", ModelLoadingOptions.mlx_only())
    texts: list[str | None] = [None] * 8
    errors: list[BaseException] = []

    def transcribe(i: int) -> None:
        try:
            segments, _ = session.transcribe(JFK, temperature=0.0)
            texts[i] = " ".join(s.text.strip() for s in segments)
        except BaseException as exc:  # reported below, with the thread's index
            errors.append(exc)

    threads = [threading.Thread(target=transcribe, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(texts)) == 1 and "ask not what your country can do for you" in (texts[0] or "").lower()
