"""Greedy decoding that stays on the device: one compiled function per token, a read-back every K.

`sampling.sample_tokens` reads every token back to the host (to check for EOT and add up
log-probs), so each token costs a host round trip on top of building ~150 primitives. Here one
`mx.compile`d function does a whole token: the logit filters and the choice (`device_filters`),
the log-prob sum, the end-of-text test, and the decoder step that feeds the choice back
(`gpu_step`'s static cache). The host only queues these functions (`mx.async_eval`, so token t+1
is built while token t runs) and, every `read_every` tokens, reads whether every row has ended.
Tokens after the step where the last row ended are computed but dropped, so the result is what
`sample_tokens` returns: rows padded with EOT after their end, the same tokens, and log-prob sums
equal up to float32 rounding.

Every row stops on its own (a finished row emits EOT and adds nothing); the batch stops when all
have. With spans on (`static_step.StepLayout.span_rows`), the self-attention cache is kept at the
span written so far (one compiled function per span, at most 4 for 448 positions).
The same code runs on the CPU, where the tests compare it with `sample_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mlx.core as mx
import numpy as np

from ..errors import ShapeConversionFailed
from .device_filters import DeviceRules, Grammar, RowState, choose, device_rules
from .gpu_step import StaticCache, StaticDecoderStep, StepProgram, to_static
from .logit_filters import LogitFilter
from .sampling import pipelining_pays, sample_tokens
from .static_step import LAYOUT, StepLayout

READ_EVERY = 32  # tokens between read-backs: each costs a wait for the device


def token_function(
    program: StepProgram,
    grammar: Grammar | None,
    eot: int,
    first: bool,
    advance: bool,
    layout: StepLayout = LAYOUT,
    span: int | None = None,
    audio_len: int | None = None,
) -> Any:
    """The compiled function of one token, made once per decoder and kind of step:
    (logits, mask, row state..., [offset, cache arrays...]) -> (token, row state..., [logits,
    offset + 1, keys..., values...]). The mask is an input, so windows with other filters share it;
    `advance` also runs the decoder on the chosen token (a window's last step does not), reading
    `span` positions of the self-attention cache (None: all) and `audio_len` of the audio's
    (None: all), as `layout` says."""
    key = ("gpu_loop", grammar, eot, first, advance, layout, span if advance else None, audio_len)
    if key not in program.functions:
        n_layer = len(program.decoder.blocks)

        def token_step(logits: mx.array, mask: mx.array, *arrays: mx.array) -> tuple[mx.array, ...]:
            rules = DeviceRules(mask, mask, grammar)
            token, state = choose(logits, rules, RowState(*arrays[:5]), first=first, eot=eot)
            if not advance:
                return (token, *state.arrays())
            offset, caches = arrays[5], arrays[6:]
            parts = [list(caches[i * n_layer : (i + 1) * n_layer]) for i in range(4)]
            out = program.prepared.step(
                token, offset, *parts, raw_logits=True, layout=layout, span=span, audio_len=audio_len
            )
            return (token, *state.arrays(), *out)

        program.functions[key] = mx.compile(token_step) if program.compiled else token_step
    return program.functions[key]


def applies(step: Any, filters: Sequence[LogitFilter], temperature: float, n_vocab: int) -> DeviceRules | None:
    """The device rules when this loop can run the decode: greedy, a static step, filters it knows."""
    if temperature != 0 or not isinstance(step, StaticDecoderStep):
        return None
    return device_rules(filters, n_vocab)


def greedy(
    step: StaticDecoderStep,
    logits: mx.array,
    cache: Any,
    tokens: mx.array,
    rules: DeviceRules,
    *,
    eot: int,
    n_steps: int,
    read_every: int = READ_EVERY,
    layout: StepLayout = LAYOUT,
) -> tuple[np.ndarray, np.ndarray]:
    """`sample_tokens` at temperature 0 (same arguments, same result) on the device."""
    if n_steps < 1:
        return np.array(tokens), np.zeros(tokens.shape[0], dtype=np.float64)
    static = cache if isinstance(cache, StaticCache) else to_static(cache, step.capacity)
    if static.length + n_steps - 1 > step.capacity:
        raise ShapeConversionFailed(
            [tokens.shape[0], step.capacity], [tokens.shape[0], static.length + n_steps - 1], "decoder context"
        )
    state = RowState.start(tokens.shape[0])
    walk = (static.offset, *static.self_k, *static.self_v)
    audio, audio_len = _audio(static, layout.audio_pad)
    chosen: list[mx.array] = []
    done_before: mx.array | None = None
    batch, kinds = tokens.shape[0], {}
    for i in range(n_steps):
        advance = i + 1 < n_steps
        span = layout.span(batch, static.length + i + 1, step.capacity)  # this token's key goes at length + i
        if advance and walk[1].shape[2] != span:
            walk = _sized(walk, span)
        if (i == 0, advance, span) not in kinds:
            kinds[i == 0, advance, span] = token_function(
                step.program, rules.grammar, eot, i == 0, advance, layout,
                None if span == step.capacity else span, audio_len,
            )  # fmt: skip
        mask = rules.first_mask if i == 0 else rules.mask
        out = kinds[i == 0, advance, span](logits, mask, *state.arrays(), *(walk + audio if advance else ()))
        chosen.append(out[0])
        state = RowState(*out[1:6])
        if advance:
            logits, walk = out[6], tuple(out[7:])
            mx.async_eval(*out)  # queued: the host builds the next token while this one runs
        if done_before is not None and bool(done_before.all().item()):
            break  # every row had ended a token ago: what was queued since is dropped below
        done_before = state.finished if (i + 1) % read_every == 0 else None  # read after the next is queued
    rows = np.array(mx.concatenate(chosen, axis=1))
    sums = np.array(state.sums).astype(np.float64)[:, 0]
    return np.concatenate([np.array(tokens, dtype=rows.dtype), rows[:, : _kept(rows, eot)]], axis=1), sums


def _sized(walk: tuple[mx.array, ...], span: int) -> tuple[mx.array, ...]:
    """(offset, keys..., values...) with the caches cut or zero-padded to `span` positions (only
    unwritten positions are cut: the span covers every written one)."""
    size = walk[1].shape[2]
    if span < size:
        return (walk[0], *(mx.contiguous(c[:, :, :span]) for c in walk[1:]))
    extra = [(0, 0), (0, 0), (0, span - size), (0, 0)]
    return (walk[0], *(mx.pad(c, extra) for c in walk[1:]))


def _audio(static: StaticCache, pad: int) -> tuple[tuple[mx.array, ...], int | None]:
    """The audio keys/values as the step takes them, and how many positions to read (None: all):
    with `pad`, copied once per window into buffers of a multiple of `pad` positions."""
    arrays = (*static.cross_k, *static.cross_v)
    length = arrays[0].shape[2]
    if pad <= 0 or length % pad == 0:
        return arrays, None
    extra = [(0, 0), (0, 0), (0, pad - length % pad), (0, 0)]
    return tuple(mx.pad(a, extra) for a in arrays), length


def _kept(rows: np.ndarray, eot: int) -> int:
    """Sampled tokens through the step where the last row emitted its first EOT (all if one never did)."""
    ended = rows == eot
    if not ended.any(axis=1).all():
        return rows.shape[1]
    return int(ended.argmax(axis=1).max()) + 1


def decode_tokens(
    step: Any,
    logits: mx.array,
    cache: Any,
    tokens: mx.array,
    filters: Sequence[LogitFilter],
    *,
    temperature: float,
    eot: int,
    n_steps: int,
    seed: int | None = None,
    layout: StepLayout = LAYOUT,
) -> tuple[np.ndarray, np.ndarray]:
    """The product's token loop: on a GPU with the static step, greedy runs on the device
    (`greedy`); otherwise (the CPU, sampling, repetition rules) `sampling.sample_tokens`."""
    rules = applies(step, filters, temperature, logits.shape[-1]) if pipelining_pays() else None
    if rules is None:
        return sample_tokens(
            step, logits, cache, tokens, filters, temperature=temperature, eot=eot, n_steps=n_steps, seed=seed
        )
    return greedy(step, logits, cache, tokens, rules, eot=eot, n_steps=n_steps, layout=layout)
