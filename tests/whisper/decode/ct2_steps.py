"""Step-by-step comparison of our decoder with CTranslate2's on the same window and prompt.

CTranslate2 decodes (greedy, beam search or sampling) from OUR encoder output, so the comparison
isolates the text decoder, the logit filters and the search. For each step of CTranslate2's path,
our decoder is fed the same tokens (teacher forcing) and we compare, step by step:
- the filters: the set of forbidden tokens (-inf) must be the same;
- the logits: log-softmax over the allowed tokens (max absolute difference);
- the choice: our argmax against CTranslate2's token (greedy), and the whole token sequence.
Beam search returns no per-step logits, so along a beam's path (or any path, such as one of our
own samples) CTranslate2's logits come from one greedy call with the path forced as a prefix.

    .venv/bin/python tests/whisper/decode/ct2_steps.py base /tmp/de.wav --task translate [--beam 5] [--temperature 0.6]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import mlx.core as mx
import numpy as np

import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)
from mlx_audio_coreml.whisper.audio import N_FRAMES, N_SAMPLES, load_audio, pad_or_trim
from mlx_audio_coreml.whisper.decoding import DecodingOptions, DecodingTask
from mlx_audio_coreml.whisper.logit_filters import SuppressTokens, apply_filters_np
from mlx_audio_coreml.whisper.mel import log_mel_spectrogram
from mlx_audio_coreml.whisper.sampling import DecoderStep
from mlx_audio_coreml.whisper.tokenizer import get_tokenizer


@dataclass
class StepReport:
    step: int
    reference_token: int
    our_argmax: int
    same_forbidden: bool  # the filters forbid exactly the same tokens
    max_logprob_diff: float  # over the allowed tokens


@dataclass
class Comparison:
    prompt: list[int]
    reference_tokens: list[int]  # CTranslate2's sampled tokens (no EOT)
    our_tokens: list[int] | None  # ours decoding the same way (None for a sampled reference)
    steps: list[StepReport]
    reference_no_speech: float
    our_no_speech: float
    reference_avg_logprob: float  # faster-whisper's: score * length / (length + 1), length penalty 1
    our_avg_logprob: float | None

    @property
    def first_disagreement(self) -> int | None:
        """The first step where filters differ or (greedy) our choice differs; None if none."""
        return next((s.step for s in self.steps if not s.same_forbidden), None)


def first_window_features(bundle, path: str) -> mx.array:
    """Our encoder output (1, n_ctx, D) for the first 30 s window of `path`, as transcribe makes it."""
    from mlx_audio_coreml.encoders import MLXAudioEncoder

    mel = log_mel_spectrogram(load_audio(path, None), bundle.dims.n_mels, padding=N_SAMPLES)
    frames = min(N_FRAMES, mel.shape[-1] - N_FRAMES)
    window = pad_or_trim(mel[:, :frames], N_FRAMES)  # zeros past the audio, as transcribe pads
    return MLXAudioEncoder(bundle.model.encoder, bundle.dims.n_mels).encode(window[None])


def reference_generate(
    ct2_model, features: mx.array, prompt: list[int], *, beam: int, temperature: float, seed: int = 1
):
    """CTranslate2's decode of our encoder output, with faster-whisper's arguments."""
    import ctranslate2

    storage = ctranslate2.StorageView.from_array(np.array(features.astype(mx.float32)))
    if temperature > 0:
        ctranslate2.set_random_seed(seed)
        kwargs = {"beam_size": 1, "num_hypotheses": 1, "sampling_topk": 0, "sampling_temperature": temperature}
    else:
        kwargs = {"beam_size": beam, "patience": 1.0}
    return ct2_model.generate(
        storage, [prompt], length_penalty=1.0, return_scores=True, return_no_speech_prob=True,
        return_logits_vocab=beam == 1, max_initial_timestamp_index=50, suppress_blank=True, suppress_tokens=[-1],
        **kwargs,
    )[0]  # fmt: skip


def reference_forced_logits(ct2_model, features: mx.array, prompt: list[int], tokens: list[int]) -> list:
    """CTranslate2's filtered logits at each step of `tokens` and at the step after them: the tokens
    go in as a forced prefix (CTranslate2 returns no per-step logits from beam search, so a beam's
    or our own sampled path is checked this way, one greedy call along it)."""
    import ctranslate2

    storage = ctranslate2.StorageView.from_array(np.array(features.astype(mx.float32)))
    result = ct2_model.generate(
        storage, [prompt + tokens], beam_size=1, return_logits_vocab=True, max_initial_timestamp_index=50,
        suppress_blank=True, suppress_tokens=[-1],
    )[0]  # fmt: skip
    logits = result.logits[0]
    if len(logits) < len(tokens) + 1:
        raise AssertionError(f"CTranslate2 gave {len(logits)} steps of logits for a {len(tokens)}-token path")
    return logits[: len(tokens) + 1]


def steps_along(ct2_model, features: mx.array, task: DecodingTask, tokens: list[int]) -> list[StepReport]:
    """Our filters and log-probs against CTranslate2's at every step of any path (`tokens`, no EOT)."""
    reference = reference_forced_logits(ct2_model, features, list(task.initial_tokens), tokens)
    return teacher_forced_steps(task, features, tokens, reference, forced=True)


def teacher_forced_steps(
    task: DecodingTask, features: mx.array, tokens: list[int], reference_logits, *, forced: bool = False
) -> list[StepReport]:
    """Our filtered logits along `tokens` (+ EOT) compared with the reference's per-step logits.

    `forced`: the reference logits come from a forced prefix, where CTranslate2 applies only its
    suppressed-tokens list (with <|notimestamps|>; not suppress_blank, not the timestamp rules);
    then that list is compared with our SuppressTokens filter, and each path token (EOT at the step
    after the prefix, where CTranslate2 filters as after a prompt) must be allowed by all our filters.
    """
    prefix = mx.array([task.initial_tokens], dtype=mx.int32)
    logits, cache, _ = task.model.decoder(prefix, features)
    last, step_fn = logits[:, -1, :], DecoderStep(task.model, features)
    history = np.array([task.initial_tokens], dtype=np.int32)
    suppress_only = [f for f in task.filters if isinstance(f, SuppressTokens)]
    reports = []
    path = (tokens + [task.tokenizer.eot])[: len(reference_logits)]  # no EOT step where both hit the length limit
    for step, token in enumerate(path):
        raw = np.array(last.astype(mx.float32))
        ours = apply_filters_np(task.filters, raw, history, step)[0]
        theirs = np.asarray(reference_logits[step], dtype=np.float32)
        their_forbidden = theirs < -1e30  # CTranslate2 writes the lowest float for a disabled token
        our_forbidden = np.isneginf(ours)
        if forced and step < len(tokens):
            compared = np.isneginf(apply_filters_np(suppress_only, raw, history, step)[0])
            if not task.options.without_timestamps:  # CTranslate2 lists it there; we in the timestamp rules
                compared[task.tokenizer.no_timestamps] = True
            same = bool((compared == their_forbidden).all()) and not our_forbidden[token]
        elif forced:  # the step after the prefix: CTranslate2 filters it as a first step after a prompt
            same = not our_forbidden[token]
        else:
            same = bool((their_forbidden == our_forbidden).all())
        allowed = ~(our_forbidden | their_forbidden)
        diff = np.abs(_log_softmax(ours[allowed]) - _log_softmax(theirs[allowed]))
        reports.append(StepReport(step, token, int(np.argmax(ours)), same, float(diff.max(initial=0.0))))
        history = np.concatenate([history, [[token]]], axis=1)
        last, cache = step_fn(mx.array([[token]], dtype=mx.int32), cache)
    return reports


def _log_softmax(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    top = values.max() if values.size else 0.0
    return values - (top + np.log(np.exp(values - top).sum()))


def compare(
    bundle, ct2_model, path: str, *, task: str, language: str | None, beam: int = 1, temperature: float = 0.0
) -> Comparison:
    """Decode the first window of `path` both ways (see the module docstring)."""
    features = first_window_features(bundle, path)
    multilingual = bundle.model.is_multilingual
    tokenizer = get_tokenizer(bundle, multilingual=multilingual, language=language, task=task)
    options = DecodingOptions(
        task=task, language=language if multilingual else None, temperature=0.0, beam_size=beam if beam > 1 else None
    )
    ours = DecodingTask(bundle.model, tokenizer, options, bundle.config)
    prompt = list(ours.initial_tokens)
    reference = reference_generate(ct2_model, features, prompt, beam=beam, temperature=temperature)
    reference_tokens = list(reference.sequences_ids[0])
    our_result = None if temperature > 0 else ours.run(features)[0]
    our_tokens = None if our_result is None else list(our_result.tokens)
    if beam == 1:
        steps = teacher_forced_steps(ours, features, reference_tokens, reference.logits[0])
    else:  # beam search returns no per-step logits: take them along its path, forced
        steps = steps_along(ct2_model, features, ours, reference_tokens)
    n = len(reference_tokens)
    return Comparison(
        prompt, reference_tokens, our_tokens, steps, float(reference.no_speech_prob), _no_speech(ours, features),
        reference.scores[0] * n / (n + 1), None if our_result is None else our_result.avg_logprob,
    )  # fmt: skip


def _no_speech(task: DecodingTask, features: mx.array) -> float:
    logits, _, _ = task.model.decoder(mx.array([task.initial_tokens[: task.sot_index + 1]], dtype=mx.int32), features)
    return float(mx.softmax(logits[0, -1].astype(mx.float32))[task.tokenizer.no_speech])


def main() -> int:
    import ctranslate2

    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.model_names import local_store

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("audio")
    parser.add_argument("--task", default="transcribe")
    parser.add_argument("--language", default=None)
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.0)
    args = parser.parse_args()
    path = Path(args.model) if Path(args.model).is_dir() else local_store() / args.model
    bundle = load_whisper(path, dtype=mx.float32)
    ct2_model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="float32", intra_threads=2)
    language = args.language or ("en" if not bundle.model.is_multilingual else _detect(ct2_model, bundle, args.audio))
    result = compare(
        bundle, ct2_model, args.audio, task=args.task, language=language, beam=args.beam, temperature=args.temperature
    )
    decode = bundle.tokenizer.decode
    out = sys.stdout
    out.write(
        f"prompt {result.prompt}  no_speech ours {result.our_no_speech:.4f} ctranslate2 {result.reference_no_speech:.4f}\n"
    )
    out.write(f"ctranslate2: {decode([t for t in result.reference_tokens if t < bundle.tokenizer.eot])!r}\n")
    if result.our_tokens is not None:
        same = result.our_tokens == result.reference_tokens
        out.write(f"ours       : {decode([t for t in result.our_tokens if t < bundle.tokenizer.eot])!r}\n")
        out.write(f"same tokens: {same} ({len(result.our_tokens)} vs {len(result.reference_tokens)})\n")
    out.write("step  ctranslate2  our_argmax  same_filters  max|dlogp|\n")
    for s in result.steps:
        out.write(
            f"{s.step:4d}  {s.reference_token:11d}  {s.our_argmax:10d}  {s.same_forbidden!s:>12}  {s.max_logprob_diff:.2e}\n"
        )
    return 0


def _detect(ct2_model, bundle, audio: str) -> str:
    import ctranslate2

    features = np.array(first_window_features(bundle, audio).astype(mx.float32))
    return ct2_model.detect_language(ctranslate2.StorageView.from_array(features))[0][0][0][2:-2]


if __name__ == "__main__":
    raise SystemExit(main())
