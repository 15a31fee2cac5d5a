"""Decode a batch of different 30 s chunks at once: greedy or beam search, each row with its own
audio, its own prompt and its own stopping point.

    results = decode_rows(model, tokenizer, features, options, prompts=[(), (50, 51)])

`decoding.DecodingTask` decodes many windows with ONE prompt and keeps every row running until
all end. Here rows are grouped by prefix length (the KV cache holds one length for the whole
batch; a per-row prompt of another length makes another group), and in greedy decoding a row that
emits EOT leaves the batch: its cache rows are dropped, so later steps cost only the rows still
running. Beam search runs `beam.BeamSearch` over the group's windows (a window's beams stay on
its own audio). The prompt rules, logit filters and result numbers are those of `DecodingTask`,
so a chunk decoded here gives the tokens it gives alone (checked by tests/whisper/batched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import mlx.core as mx
import numpy as np

from . import gpu_loop, gpu_step, host_prefill
from .beam import BeamSearch
from .decoding import (
    DecodingOptions,
    DecodingResult,
    DecodingTask,
    compression_ratio,
    detect_language,
    length_penalized,
)
from .device_filters import device_rules
from .logit_filters import LogitFilter, apply_filters_np
from .model import reorder_kv_cache
from .sampling import DecoderStep, chosen_logprobs, repeat_rows

Prompt = tuple[int, ...]


def decode_rows(
    model: Any,
    tokenizer: Any,
    features: mx.array,
    options: DecodingOptions,
    prompts: Sequence[Sequence[int]] | None = None,
    config: dict | None = None,
    languages: Sequence[str | None] | None = None,
) -> list[DecodingResult]:
    """Decode each row of `features` (N, n_ctx, D) at temperature 0 (greedy, or beam search with
    `options.beam_size`); row i is prompted with `prompts[i]` (previous-text tokens; () for none)
    and, on a multilingual model, written in `languages[i]` (None: the options' language, else
    detected per row). `options.prompt` is ignored: prompts are per row. One result per row, in order."""
    if options.temperature != 0:
        raise ValueError("decode_rows decodes at temperature 0; sample hotter rungs with DecodingTask")
    count = features.shape[0]
    row_prompts = [tuple(p) for p in prompts] if prompts is not None else [()] * count
    if len(row_prompts) != count:
        raise ValueError(f"{len(row_prompts)} prompts for {count} rows")
    tasks = {p: DecodingTask(model, tokenizer, replace(options, prompt=p or None), config) for p in set(row_prompts)}
    languages = list(languages) if languages is not None else [None] * count
    if None in languages:
        languages = [given or found for given, found in zip(languages, _languages(model, tokenizer, features, options))]
    groups: dict[int, list[int]] = {}
    for i, prompt in enumerate(row_prompts):
        groups.setdefault(tasks[prompt].sample_begin, []).append(i)
    results: list[DecodingResult | None] = [None] * count
    for rows in groups.values():
        prefixes = [tasks[row_prompts[i]].with_language(languages[i]) for i in rows]
        task = tasks[row_prompts[rows[0]]]  # same prefix length: same filters and sample_begin
        picked = features[mx.array(rows)] if len(rows) < count else features
        for i, result in zip(rows, _decode_group(task, picked, prefixes, [languages[i] for i in rows])):
            results[i] = result
    return [r for r in results if r is not None]


def _languages(model: Any, tokenizer: Any, features: mx.array, options: DecodingOptions) -> list[str | None]:
    """The options' language for every row, or each row's detected one (multilingual models)."""
    if not getattr(model, "is_multilingual", False):
        return ["en"] * features.shape[0]
    if options.language is not None:
        return [options.language] * features.shape[0]
    return [max(p, key=p.__getitem__) for p in detect_language(model, features, tokenizer)]


def _decode_group(
    task: DecodingTask, features: mx.array, prefixes: list[list[int]], languages: list[str | None]
) -> list[DecodingResult]:
    """Rows whose prefixes have one length: prefill them together, then search."""
    prefix = mx.array(np.array(prefixes, dtype=np.int32))  # (n, T0)
    sot_logits, last_logits, cache = _prefill(task, prefix, features)
    no_speech = np.array(mx.softmax(sot_logits, axis=-1)[:, task.tokenizer.no_speech]).astype(float).tolist()
    eot, options = task.tokenizer.eot, task.options
    if options.beam_size is not None:
        beam = options.beam_size
        step = DecoderStep(task.model, mx.repeat(features, beam, axis=0) if beam > 1 else features)
        search = BeamSearch(beam, eot, options.patience)
        found = search.run(
            step, repeat_rows(last_logits, beam), repeat_rows(cache, beam), repeat_rows(prefix, beam),
            task.filters, n_audio=len(prefixes), n_steps=task.sample_len,
        )  # fmt: skip
        best = [max(c, key=lambda c: length_penalized(c[1], len(c[0]), options.length_penalty)) for c in found]
    else:
        best = greedy_rows(
            task.model, features, last_logits, cache, np.array(prefixes, np.int32), task.filters, eot, task.sample_len
        )
    return [_result(task, tokens, total, lang, ns) for (tokens, total), lang, ns in zip(best, languages, no_speech)]


def _prefill(task: DecodingTask, prefix: mx.array, features: mx.array) -> tuple[mx.array, mx.array, Any]:
    """The prefix through the decoder: logits at <|startoftranscript|> and at the last position
    (each (n, V)) and the cache. The prompt goes in first, alone, so no logits are computed for it.

    On the CPU host path rows go one at a time (`host_prefill` takes batch 1) and their caches are
    joined: MLX's own CPU ops took 27 s for 3 rows here (load ~21), the whole greedy decode of the
    3 rows with the host prefill 6.6 s."""
    decoder = task.model.decoder
    if prefix.shape[0] > 1 and host_prefill.applies(decoder, prefix[:1], None, features[:1]):
        parts = [_prefill_rows(task, prefix[i : i + 1], features[i : i + 1]) for i in range(prefix.shape[0])]
        sot_logits, last_logits, caches = zip(*parts)
        return mx.concatenate(list(sot_logits)), mx.concatenate(list(last_logits)), _joined(caches)
    return _prefill_rows(task, prefix, features)


def _prefill_rows(task: DecodingTask, prefix: mx.array, features: mx.array) -> tuple[mx.array, mx.array, Any]:
    decoder, sot = task.model.decoder, task.sot_index
    cache = None
    if sot > 0:  # the previous text: only its keys and values are kept
        cache = decoder.prompt_cache(prefix[:, :sot], features)
    logits, cache, _ = decoder(prefix[:, sot:], features, cache)  # (n, T0 - sot, V)
    return logits[:, 0, :], logits[:, -1, :], cache


def _joined(caches: Sequence[Any]) -> Any:
    """Per-row caches (each a list of ((k, v), (k_t, v)) with batch 1) as one batch cache."""

    def join(pairs: Sequence[tuple[Any, Any]]) -> tuple[mx.array, mx.array]:
        return mx.concatenate([mx.array(p[0]) for p in pairs]), mx.concatenate([mx.array(p[1]) for p in pairs])

    return [(join([c[i][0] for c in caches]), join([c[i][1] for c in caches])) for i in range(len(caches[0]))]


def greedy_rows(
    model: Any,
    features: mx.array,
    logits: mx.array,
    cache: Any,
    prefix: np.ndarray,
    filters: Sequence[LogitFilter],
    eot: int,
    n_steps: int,
) -> list[tuple[list[int], float]]:
    """Greedy decoding where a row that emits EOT leaves the batch (its cache rows are dropped).
    Returns each row's sampled tokens (without EOT) and its summed log-prob through EOT.

    On a GPU the rows run through `gpu_loop` instead (fixed shapes, nothing read back per token):
    an ended row stays in the batch emitting EOT, which costs less there than a new graph."""
    rules = device_rules(filters, logits.shape[-1]) if gpu_step.applies() else None
    if rules is not None:
        step = gpu_step.StaticDecoderStep(model, features)
        rows, totals = gpu_loop.greedy(step, logits, cache, mx.array(prefix), rules, eot=eot, n_steps=n_steps)
        sampled_rows = [row[prefix.shape[1] :].tolist() for row in rows]
        return [(r[: r.index(eot)] if eot in r else r, float(t)) for r, t in zip(sampled_rows, totals)]
    sampled: list[list[int]] = [[] for _ in range(prefix.shape[0])]
    sums = np.zeros(prefix.shape[0], dtype=np.float64)
    active = np.arange(prefix.shape[0])  # original row of each row still in the batch
    rows = prefix
    step_fn = DecoderStep(model, features)
    host_logits = np.array(logits, dtype=np.float32)  # the prefill's, copied once: the filters write into it
    for step in range(n_steps):
        filtered = apply_filters_np(filters, host_logits, rows, step, in_place=True)
        chosen = filtered.argmax(axis=-1).astype(np.int32)
        sums[active] += chosen_logprobs(filtered, chosen)
        rows = np.concatenate([rows, chosen[:, None]], axis=1)
        done = chosen == eot
        for row, token in zip(active[~done].tolist(), chosen[~done].tolist()):
            sampled[row].append(token)
        if done.all() or step + 1 == n_steps:
            break
        if done.any():  # the finished rows leave: later steps compute only the others
            keep = np.flatnonzero(~done)
            active, rows, chosen = active[keep], rows[keep], chosen[keep]
            picked = mx.array(keep.astype(np.int32))
            cache = reorder_kv_cache(cache, picked)  # different audio per row: its keys/values go too
            step_fn = DecoderStep(model, step_fn.audio_features[picked])
        host_logits, cache = step_fn.host_call(mx.array(chosen[:, None]), cache)
    return [(tokens, float(total)) for tokens, total in zip(sampled, sums)]


def _result(
    task: DecodingTask, tokens: list[int], sum_logprob: float, language: str | None, no_speech: float
) -> DecodingResult:
    text = task.tokenizer.decode([t for t in tokens if t < task.tokenizer.eot])
    return DecodingResult(
        tokens=tuple(tokens), text=text, language=language, avg_logprob=sum_logprob / (len(tokens) + 1),
        sum_logprob=sum_logprob, no_speech_prob=float(no_speech), temperature=0.0,
        compression_ratio=compression_ratio(text),
    )  # fmt: skip
