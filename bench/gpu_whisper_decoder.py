"""Decoder rows of gpu_whisper.py: ms per token at batch 1 after the prefill, ours and the peer's.

Ours, each after a 3-token prefill, `--steps` tokens, EOT -1 so nothing stops early:
- the product's loop now: `gpu_loop.decode_tokens` with the static step (on a GPU: the
  device-resident greedy loop, filters and choice on the device, a read-back every 32 tokens);
- the same with no read-back until the end (what the read-backs cost);
- the previous product loop: `sampling.sample_tokens` with the static step (a read-back per token);
- the previous product loop with the dynamic `DecoderStep`;
- a bare static loop: the compiled step, argmax on the device, a read-back every 32 tokens.
Graph nodes per token: the nodes MLX dispatches for one token (`gpu_common.graph_nodes`).
Peer: transformers' `generate` ((t(N) - t(1)) / (N - 1)) and its decoder stepped by hand.
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable

from gpu_common import (
    Result,
    check_finite,
    clock,
    graph_nodes,
    median_ms,
    not_available,
    product_filters,
    prompt_tokens,
)
from mlx_audio_coreml.whisper import gpu_loop
from mlx_audio_coreml.whisper.device_filters import RowState
from mlx_audio_coreml.whisper.gpu_step import StaticDecoderStep, to_static
from mlx_audio_coreml.whisper.logit_filters import apply_filters
from mlx_audio_coreml.whisper.model import ModelDimensions, Whisper
from mlx_audio_coreml.whisper.sampling import DecoderStep, pipelining_pays, sample_tokens

import mlx.core as mx  # isort: skip

Row = tuple[str, Result, str, str]  # label, ours ms, peer key ("generate" or "hand"), graph nodes per token


def _nodes(outputs: list[mx.array]) -> str:
    total, kernels = graph_nodes(outputs)
    return f"{total} ({kernels} not views)"


class DecoderBench:
    """Our batch-1 decoder loops on one random model and one random window of audio features."""

    def __init__(self, model: Whisper, d: ModelDimensions, args: argparse.Namespace, batch: int = 1) -> None:
        self.model, self.d, self.args, self.batch = model, d, args, batch
        self.features = mx.random.normal((batch, d.n_audio_ctx, d.n_audio_state)).astype(model.dtype)
        self.prompt = prompt_tokens(d)
        self.prefix = mx.array([self.prompt] * batch, dtype=mx.int32)
        self.static = StaticDecoderStep(model, self.features)  # one compiled graph for every run
        self.dynamic = DecoderStep(model, self.features)

    def prefill(self) -> tuple[mx.array, list]:
        logits, cache, _ = self.model.decoder(self.prefix, self.features)
        check_finite(bool(mx.all(mx.isfinite(logits)).item()), "our decoder")
        mx.eval(logits, cache)
        return logits[:, -1, :], cache

    def loop_ms(self, loop: Callable, step: object, **extra: object) -> float:
        """ms per token of `loop` (sample_tokens' signature) over `steps` decoder calls."""
        last, cache = self.prefill()
        steps, filters = self.args.steps, product_filters(self.d, len(self.prompt))
        start = time.perf_counter()
        tokens, _ = loop(step, last, cache, self.prefix, filters, temperature=0.0, eot=-1, n_steps=steps + 1, **extra)
        elapsed = (time.perf_counter() - start) * 1e3
        if tokens.shape != (self.batch, len(self.prompt) + steps + 1):
            raise RuntimeError(f"the loop made {tokens.shape[1] - len(self.prompt)} tokens, expected {steps + 1}")
        return elapsed / steps

    def device_loop(self, read_every: int) -> Callable:
        """`gpu_loop.greedy` with sample_tokens' signature; refuses to fall back to the host loop."""

        def run(step, last, cache, prefix, filters, *, temperature: float, eot: int, n_steps: int):
            rules = gpu_loop.applies(step, filters, temperature, last.shape[-1])
            if rules is None:
                raise RuntimeError("the device loop does not apply to these filters")
            return gpu_loop.greedy(step, last, cache, prefix, rules, eot=eot, n_steps=n_steps, read_every=read_every)

        return run

    def static_loop(self) -> float:
        """The compiled step alone, argmax on the device, async eval, a read-back every 32 tokens."""
        last, cache = self.prefill()
        token = mx.argmax(last, axis=-1).astype(mx.int32)[:, None]
        mx.eval(token)
        start = time.perf_counter()
        for i in range(self.args.steps):
            logits, cache = self.static(token, cache)
            token = mx.argmax(logits, axis=-1).astype(mx.int32)[:, None]
            mx.async_eval(token)
            if (i + 1) % 32 == 0:
                token.item()
        token.item()
        return (time.perf_counter() - start) * 1e3 / self.args.steps

    def token_nodes(self) -> str:
        """Graph nodes of one token of the device loop (filters, choice, state and step)."""
        last, cache = self.prefill()
        filters = product_filters(self.d, len(self.prompt))
        rules = gpu_loop.applies(self.static, filters, 0.0, last.shape[-1])
        if rules is None:
            return "-"
        static, state = to_static(cache, self.static.capacity), RowState.start(self.batch)
        inputs = [*state.arrays(), static.offset, *static.self_k, *static.self_v, *static.cross_k, *static.cross_v]
        mx.eval(inputs, last)
        run = gpu_loop.token_function(self.static.program, rules.grammar, -1, False, True)
        return _nodes(list(run(last, rules.mask, *inputs)))

    def step_nodes(self, with_filters: bool) -> str:
        """Graph nodes of the static step plus argmax (bare loop) or plus the host loop's filter graph."""
        last, cache = self.prefill()
        static = to_static(cache, self.static.capacity)
        arrays = [static.offset, *static.self_k, *static.self_v, *static.cross_k, *static.cross_v]
        token = mx.zeros((self.batch, 1), dtype=mx.int32)
        mx.eval(arrays, token, last)
        out = list(self.static.program.run(token, *arrays))
        if not with_filters:
            return _nodes([mx.argmax(out[0], axis=-1), *out[1:]])
        tokens = mx.array([self.prompt + [50365, 400]] * self.batch, dtype=mx.int32)
        filtered = apply_filters(product_filters(self.d, len(self.prompt)), last, tokens, 2)
        chosen = mx.argmax(filtered, axis=-1)
        extra, _ = graph_nodes([filtered, chosen, mx.concatenate([tokens, chosen[:, None]], axis=1)])
        total, kernels = graph_nodes(out)
        return f"~{total + extra} (step {total}, {kernels} not views; filters etc. {extra})"

    def rows(self, emit: Callable[[Row], None]) -> None:
        """Measure each loop (a failure becomes an "n/a" cell) and hand each row to `emit` at once."""
        a = self.args
        plans: list[tuple[str, Callable[[], float], str, Callable[[], str]]] = [
            ("product loop now: gpu_loop.decode_tokens" + (" (device greedy + filters, read-back / 32, static step)"
             if pipelining_pays() else " (on the CPU: the host loop)") + " / generate()",
             lambda: self.loop_ms(gpu_loop.decode_tokens, self.static), "generate", self.token_nodes),
            ("device greedy loop, one read-back at the end / generate()",
             lambda: self.loop_ms(self.device_loop(10**6), self.static), "generate", self.token_nodes),
            ("previous product loop: sample_tokens + static step, read-back / token / generate()",
             lambda: self.loop_ms(sample_tokens, self.static), "generate", lambda: self.step_nodes(True)),
            ("previous product loop: sample_tokens + dynamic DecoderStep / generate()",
             lambda: self.loop_ms(sample_tokens, self.dynamic), "generate", lambda: "-"),
            ("bare static compiled step, argmax on device, read-back / 32 / hand loop",
             self.static_loop, "hand", lambda: self.step_nodes(False)),
        ]  # fmt: skip
        if self.batch > 1:  # the two product loops only, ms per step of the whole batch
            plans = [(f"b{self.batch} per step: {label.split(' / ')[0]}", measure, "none", nodes)
                     for label, measure, _, nodes in plans[::2][:2]]  # fmt: skip
        for label, measure, peer_key, nodes in plans:
            try:
                ours: Result = median_ms(measure, a.warmup_decoder, a.repeats_decoder)
            except Exception as exc:  # report, measure the rest
                ours = not_available(exc)
            try:
                counted = nodes()
            except Exception as exc:
                counted = not_available(exc)
            emit((label, ours, peer_key, counted))


def peer_decoder(peer: tuple, d: ModelDimensions, args: argparse.Namespace) -> dict[str, Result]:
    """{"generate": ms, "hand": ms} per token at batch 1, prefill excluded."""
    torch, model, device = peer
    from transformers import GenerationMixin
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    done = (lambda _: torch.cuda.synchronize()) if device == "cuda" else (lambda _: None)
    features = torch.randn(1, d.n_audio_ctx, d.n_audio_state, device=device, dtype=model.dtype)
    prefix, steps, decoder = torch.tensor([prompt_tokens(d)], device=device), args.steps, model.model.decoder
    cache_arg = "cache" if "cache" in inspect.signature(decoder.forward).parameters else "past_key_values"

    def next_token(tokens, cache):  # the cache object is updated in place
        hidden = decoder(
            input_ids=tokens, encoder_hidden_states=features, use_cache=True, **{cache_arg: cache}
        ).last_hidden_state
        return model.proj_out(hidden[:, -1:]).argmax(-1)  # (1, 1)

    def hand_loop() -> float:
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        token = next_token(prefix, cache)
        token.item()
        start = time.perf_counter()
        for _ in range(steps):
            token = next_token(token, cache)
            token.item()  # read back (and sync), as a loop checking for EOT must
        return (time.perf_counter() - start) * 1e3 / steps

    def generate(n: int) -> None:
        out = GenerationMixin.generate(
            model, encoder_outputs=BaseModelOutput(last_hidden_state=features), decoder_input_ids=prefix,
            max_new_tokens=n, min_new_tokens=n, do_sample=False, num_beams=1,
        )  # fmt: skip
        if out.shape[1] != prefix.shape[1] + n:
            raise RuntimeError(f"generate made {out.shape[1] - prefix.shape[1]} tokens, expected {n}")

    found: dict[str, Result] = {}
    with torch.inference_mode():
        try:
            found["hand"] = median_ms(hand_loop, args.warmup_decoder, args.repeats_decoder)
        except Exception as exc:
            found["hand"] = not_available(exc)
        try:
            full, one = (
                median_ms(lambda n=n: clock(lambda: generate(n), done), args.warmup_decoder, args.repeats_decoder)
                for n in (steps, 1)
            )
            found["generate"] = (full - one) / (steps - 1)
        except Exception as exc:
            found["generate"] = not_available(exc)
    return found
