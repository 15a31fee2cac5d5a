"""The token loop for greedy decoding and sampling, and the decoder step it drives.

The decoder's KV cache is a value passed in and returned by each step. On a GPU the loop queues the
decoder step for token n+1 (`mx.async_eval`) before it reads token n back, so Python's bookkeeping
overlaps the model's arithmetic; on the CPU, where that hand-off costs more than it saves, each
step is evaluated once, when its token is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import mlx.core as mx
import numpy as np

from ..cancel import raise_dropped_interrupt
from ..cpu import team as host_team
from ..cpu.host_math import log_normalizers
from . import host_decoder
from .host_cache import HostKV
from .logit_filters import LogitFilter, apply_filters, apply_filters_np
from .model import reorder_kv_cache


def sample_tokens(
    decode_step: Any,
    logits: mx.array,
    cache: Any,
    tokens: mx.array,
    filters: Sequence[LogitFilter],
    *,
    temperature: float,
    eot: int,
    n_steps: int,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy (temperature 0) or random sampling of up to `n_steps` tokens for every row.

    `logits` (B, V) are the next-token logits after the prefix `tokens` (B, T0). Returns the token
    rows (B, T0 + n) and each row's summed log-prob of its sampled tokens through its first EOT.
    With a `seed`, step n draws with the n-th key split from it, so the same input samples the
    same tokens on every run whatever else used MLX's global random state.

    On a GPU each step queues its token choice and its log-probs, then the decoder step that
    consumes it, and only then reads the (B,) values back, so the decoder runs while the host checks
    for EOT and adds up log-probs; stopping then costs one decoder step whose result is dropped.
    (Greedy decoding on a GPU has a faster loop still: `gpu_loop`.)
    """
    if temperature == 0 and not pipelining_pays():
        return _greedy_on_host(decode_step, logits, cache, tokens, filters, eot=eot, n_steps=n_steps)
    batch = tokens.shape[0]
    finished = mx.zeros((batch,), dtype=mx.bool_)
    sum_logprobs = np.zeros(batch, dtype=np.float64)
    pipelined = pipelining_pays()
    keys = mx.random.split(mx.random.key(seed), n_steps) if seed is not None and temperature > 0 else None
    for step in range(n_steps):
        filtered = apply_filters(filters, logits, tokens, step)
        if temperature == 0:
            chosen = mx.argmax(filtered, axis=-1).astype(mx.int32)
        else:
            key = None if keys is None else keys[step]
            chosen = mx.random.categorical(filtered / temperature, key=key).astype(mx.int32)
        chosen = mx.where(finished, eot, chosen)  # a finished row keeps emitting EOT
        was_finished, finished = finished, finished | (chosen == eot)
        tokens = mx.concatenate([tokens, chosen[:, None]], axis=1)
        more = step + 1 < n_steps
        if pipelined and more:  # the next decoder step runs while this token is read back
            mx.async_eval(filtered, chosen, finished, tokens)  # queued first, so read back first
            logits, cache = decode_step(chosen[:, None], cache)
            mx.async_eval(logits, cache)
        if _account(filtered, chosen, was_finished, finished, sum_logprobs):
            break
        if more and not pipelined:  # the CPU computes only steps that are needed
            logits, cache = decode_step(chosen[:, None], cache)
    return np.array(tokens), sum_logprobs


def _greedy_on_host(
    decode_step: Any,
    logits: mx.array,
    cache: Any,
    tokens: mx.array,
    filters: Sequence[LogitFilter],
    *,
    eot: int,
    n_steps: int,
) -> tuple[np.ndarray, np.ndarray]:
    """`sample_tokens` at temperature 0 with the choice made in numpy: on the CPU the host is the
    device, and the filters, argmax and log-prob sums of a step cost ~2 ms as an MLX graph here
    against ~0.1 ms in numpy. Same rules (`apply_np`), same tokens, same sums."""
    rows = np.array(tokens, dtype=np.int32)  # (B, T0)
    host_logits = np.array(logits, dtype=np.float32)  # the prefill's, copied once: the filters write into it
    finished = np.zeros(rows.shape[0], dtype=bool)
    sum_logprobs = np.zeros(rows.shape[0], dtype=np.float64)
    every_row = np.arange(rows.shape[0])
    with step_team(decode_step):  # one helper for the whole loop (cpu/team.py)
        for step in range(n_steps):
            filtered = apply_filters_np(filters, host_logits, rows, step, in_place=True)
            best = filtered.argmax(axis=-1)
            chosen = np.where(finished, eot, best).astype(np.int32)
            picked = chosen_logprobs(filtered, chosen, maxima=filtered[every_row, best])  # the argmax gives the max
            sum_logprobs += np.where(~finished, picked, 0.0)  # rows still running
            finished |= chosen == eot
            rows = np.concatenate([rows, chosen[:, None]], axis=1)
            if finished.all():
                break
            if step + 1 < n_steps:
                host_logits, cache = host_step(decode_step, mx.array(chosen[:, None]), cache)
    return rows, sum_logprobs


def step_team(decode_step: Any) -> AbstractContextManager[Any]:
    """The host decoder's step team (cpu/team.py) open for a whole decoding loop: its helper
    enlisted once, not at every step, and there between steps. Only where the host decoder runs its
    blocks in one C call (`host_decoder.in_one_call`); otherwise its products go through the host
    pool, whose helper the team would hold."""
    decoder = getattr(decode_step, "decoder", None)
    wanted = decoder is not None and host_decoder.in_one_call(decoder)
    return host_team.enlisted(bool(wanted))


def pipelining_pays() -> bool:
    """Queue work with `mx.async_eval` only where a GPU computes while the host goes on. On the
    CPU the host thread is the compute: a small graph costs ~0.2 ms through async_eval and ~0.07 ms
    evaluated when read (measured here), and the CPU decoder step evaluates synchronously anyway."""
    return mx.default_device() != mx.cpu


def logprobs_on_device() -> bool:
    """Take a step's log-probs on the device (float32) and read back (B,) values: on a GPU. On the
    CPU they stay float64 on the host, as the CPU's transcripts always had them."""
    return mx.default_device() != mx.cpu


def _account(
    filtered: mx.array,
    chosen: mx.array,
    was_finished: mx.array,
    finished: mx.array,
    sum_logprobs: np.ndarray,
) -> bool:
    """Add one step's log-probs to the rows still running; True once every row has finished.

    On a GPU the log-probs are taken on the device and only (B,) values come back: reading the
    (B, V) row each token moved its buffer to host-visible memory, and the kernel that next wrote
    into that recycled buffer paid for moving it back (likely the ~0.3 ms "timestamp-rule mask"
    kernel of bench/results/gpu_decoder_profile_h100.md). On the CPU the host computes them in
    float64 as before."""
    if logprobs_on_device():
        lse = mx.logsumexp(filtered, axis=-1)
        picked = mx.take_along_axis(filtered, chosen[:, None], axis=-1)[:, 0] - lse
        mx.eval(picked, was_finished, finished)
        logprobs = np.array(picked).astype(np.float64)
    else:
        mx.eval(filtered, chosen, was_finished, finished)  # one evaluation for the four reads below
        logprobs = None
    running = ~np.array(was_finished)
    if running.any():
        if logprobs is None:
            logprobs = chosen_logprobs(np.array(filtered), np.array(chosen))
        sum_logprobs += np.where(running, logprobs, 0.0)
    return bool(np.array(finished).all())


def chosen_logprobs(logits: np.ndarray, chosen: np.ndarray, maxima: np.ndarray | None = None) -> np.ndarray:
    """log softmax(logits)[row, chosen[row]] for logits (B, V), in float64 (`maxima`: as for
    `log_normalizers`)."""
    return logits[np.arange(len(chosen)), chosen].astype(np.float64) - log_normalizers(logits, maxima)


class DecoderStep:
    """Runs the text decoder for new tokens against fixed audio features; returns last logits and cache."""

    def __init__(self, model: Any, audio_features: mx.array) -> None:
        self.decoder = model.decoder
        self.audio_features = audio_features

    def __call__(self, tokens: mx.array, cache: Any) -> tuple[mx.array, Any]:
        if pipelining_pays():
            raise_dropped_interrupt()  # a Ctrl-C that the last step's MLX conversions dropped (cancel.py)
            logits, cache, _ = self.decoder(tokens, self.audio_features, cache, scores=False)
            return logits[:, -1, :], cache
        # The CPU evaluates the step here, as its first read would, and hands back the last position
        # as a plain copy (`host_call`'s block, made into an MLX array once).
        logits_rows, cache = self.host_call(tokens, cache)
        return mx.array(logits_rows), cache

    def host_call(self, tokens: mx.array, cache: Any) -> tuple[np.ndarray, Any]:
        """`__call__` for the CPU's host loops: the logits (B, V) as a float32 numpy array of their
        own, the host decoder's block itself. Through `__call__` a greedy tiny.en step copied its
        51864 logits into MLX, back out and once more for the filters, each copy of a row the other
        core had just written; MLX's conversions are also where a Ctrl-C can be dropped (cancel.py)."""
        raise_dropped_interrupt()
        logits, cache, _ = self.decoder(tokens, self.audio_features, cache, scores=False, host_logits=True)
        if isinstance(logits, np.ndarray):
            return logits, cache
        # the last position sliced in numpy: reading back an MLX slice is an op for MLX's stream
        # thread, which a profile of the greedy host loop here showed at ~0.6 ms a step under load
        return np.array(np.asarray(logits)[:, -1, :], dtype=np.float32), cache

    def reorder(self, cache: Any, rows: mx.array) -> Any:
        """The cache of the rows `rows` (beam search's survivors: each from a beam of its own window),
        through `reorder_kv_cache(..., same_audio_rows=True, in_place=True)`: the host decoder's keys and values
        are moved in place (`HostKV.moved`, only rows whose beam changed): the cache passed in is
        used up, and reading it again raises `StaleCache`."""
        index = np.asarray(rows).reshape(-1).tolist()
        if index == list(range(len(index))):  # every beam goes on in its own row (most steps here)
            return cache
        return reorder_kv_cache(cache, rows, same_audio_rows=True, in_place=True)


def host_step(decode_step: Any, tokens: mx.array, cache: Any) -> tuple[np.ndarray, Any]:
    """One step of a host decoding loop: the next-token logits (B, V) as a float32 numpy array the
    loop owns (its filters write into it), through the step's `host_call` where it has one."""
    call = getattr(decode_step, "host_call", None)
    if call is not None:
        return call(tokens, cache)
    logits, cache = decode_step(tokens, cache)
    return np.array(logits, dtype=np.float32), cache


def repeat_rows(tree: Any, repeats: int) -> Any:
    """Every array in a (nested) cache repeated along the batch axis: row i becomes rows i*r .. i*r+r-1."""
    if repeats == 1:
        return tree
    if isinstance(tree, mx.array):
        return mx.repeat(tree, repeats, axis=0)
    if isinstance(tree, HostKV):  # keys/values kept by the CPU host decoder
        return tree.repeat(repeats)
    if isinstance(tree, (list, tuple)):
        return type(tree)(repeat_rows(t, repeats) for t in tree)
    return tree
