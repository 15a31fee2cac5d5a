"""Recurrent layers (coremltools iOS15/iOS17/iOS18 recurrent.py): rnn, gru and lstm over a sequence
x (S, B, I) from an initial state (B, H), as a Python loop over time steps of lazy MLX ops.

Semantics follow coremltools' op definitions where its own test references (the numpy and PyTorch
models in ops/tests/iOS14/test_recurrent.py, which Core ML passes) agree with them, and the
references where they differ:
- gate order in the stacked weights: lstm [input, forget, output, cell], gru [reset, output
  (candidate), update]; `bias` is one vector already summing the input and hidden biases;
- gru applies the reset gate to h before its product with the candidate's hidden weights
  (o = act(W_io x + W_ho (r * h) + b_o)); the iOS18 `reset_after` applies it after instead
  (o = act(W_io x + b_io + r * (W_ho h + b_ho))), with `input_bias` the input-side biases;
- lstm's `clip` bounds the cell state after each update; the output gate's peephole reads the
  updated cell state, the input and forget gates' peepholes the previous one;
- direction "reverse" reads x from its last step to its first and emits the hidden states in
  that processing order; "bidirectional" (lstm only) puts the backward pass's states back at
  the time steps they read, concatenated after the forward ones on the last axis, and its last
  state (the one at time step 0) is the backward half of the non-sequence output.
Activations take no parameters here, so scaled_tanh is tanh (alpha = beta = 1) and
sigmoid_hard / hard_sigmoid is clip(0.2 x + 0.5, 0, 1), as in those references.
float16 programs (iOS17+) compute in float32 on the CPU (see `compute_dtype`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import overload

import mlx.core as mx

from .registry import OpContext, as_bool, as_float, as_str, compute_dtype, register

Activation = Callable[[mx.array], mx.array]
State = tuple[mx.array, ...]  # (h,) or (h, c), each (B, H)
Step = Callable[[mx.array, State], State]

_ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": mx.sigmoid,
    "tanh": mx.tanh,
    "scaled_tanh": mx.tanh,
    "relu": lambda v: mx.maximum(v, 0),
    "sigmoid_hard": lambda v: mx.clip(0.2 * v + 0.5, 0, 1),
    "hard_sigmoid": lambda v: mx.clip(0.2 * v + 0.5, 0, 1),
    "linear": lambda v: v,
}

_STATIC = ("direction", "output_sequence", "activation")


def _activation(name) -> Activation:
    key = as_str(name).lower()
    if key not in _ACTIVATIONS:
        raise ValueError(f"recurrent activation '{key}' is not one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[key]


def _direction(value, allowed: Sequence[str]) -> str:
    direction = as_str(value)
    if direction not in allowed:
        raise ValueError(f"recurrent direction '{direction}' is not one of {list(allowed)}")
    return direction


@overload
def _prepared(ctx: OpContext, name: str, value: mx.array, dtype: mx.Dtype, transpose: bool = False) -> mx.array: ...
@overload
def _prepared(ctx: OpContext, name: str, value: None, dtype: mx.Dtype, transpose: bool = False) -> None: ...
@overload
def _prepared(
    ctx: OpContext, name: str, value: mx.array | None, dtype: mx.Dtype, transpose: bool = False
) -> mx.array | None: ...
def _prepared(
    ctx: OpContext, name: str, value: mx.array | None, dtype: mx.Dtype, transpose: bool = False
) -> mx.array | None:
    """A weight or bias in the compute dtype (a weight transposed to (In, G*H) so steps run
    `v @ w`), made once per node when it is a constant, as coremltools requires it to be."""
    if value is None:
        return None
    return ctx.derived(
        f"{name}:{dtype}", name, lambda: (value.T if transpose else value).astype(dtype), (value, dtype, transpose)
    )


def _project(x: mx.array, w_ih: mx.array, bias: mx.array | None) -> mx.array:
    """Input contributions of every time step in one product: (S, B, I) -> (S, B, G*H)."""
    if bias is None:
        return mx.matmul(x, w_ih)
    return mx.addmm(bias, x.reshape(-1, x.shape[-1]), w_ih).reshape(x.shape[0], x.shape[1], -1)


def _scan(step: Step, projected: mx.array, state: State, reverse: bool) -> tuple[list[mx.array], State]:
    """Run `step` over the time axis; the hidden state after each step, in processing order."""
    order = range(projected.shape[0] - 1, -1, -1) if reverse else range(projected.shape[0])
    hidden: list[mx.array] = []
    for t in order:
        state = step(projected[t], state)
        hidden.append(state[0])
    return hidden, state


def _sequence(hidden: list[mx.array], output_sequence) -> mx.array:
    if as_bool(output_sequence):
        return mx.stack(hidden, axis=0)  # (S, B, H)
    return hidden[-1][None]  # (1, B, H)


@register("rnn", static=_STATIC)
def rnn(
    ctx: OpContext,
    x: mx.array,
    initial_h: mx.array,
    weight_ih: mx.array,
    weight_hh: mx.array,
    bias: mx.array | None = None,
    direction="forward",
    output_sequence=False,
    activation="tanh",
) -> tuple[mx.array, mx.array]:
    dtype = compute_dtype(x.dtype)
    act = _activation(activation)
    reverse = _direction(direction, ("forward", "reverse")) == "reverse"
    w_hh = _prepared(ctx, "weight_hh", weight_hh, dtype, transpose=True)
    projected = _project(
        x.astype(dtype),
        _prepared(ctx, "weight_ih", weight_ih, dtype, transpose=True),
        _prepared(ctx, "bias", bias, dtype),
    )

    def step(p: mx.array, state: State) -> State:
        return (act(p + state[0] @ w_hh),)

    hidden, (h,) = _scan(step, projected, (initial_h.astype(dtype),), reverse)
    return _sequence(hidden, output_sequence).astype(x.dtype), h.astype(x.dtype)


def _gru_step(
    w_hh: mx.array, hidden_bias: mx.array | None, reset_after: bool, act: Activation, gate_act: Activation
) -> Step:
    """One GRU step; `w_hh` (H, 3H) holds the [reset, output, update] columns."""
    size = w_hh.shape[0]
    w_gates = mx.concatenate([w_hh[:, :size], w_hh[:, 2 * size :]], axis=1)  # (H, 2H): reset, update
    w_out = w_hh[:, size : 2 * size]  # (H, H)

    def step(p: mx.array, state: State) -> State:
        h = state[0]
        if reset_after:
            recurrent = h @ w_hh if hidden_bias is None else mx.addmm(hidden_bias, h, w_hh)  # (B, 3H)
            r = gate_act(p[:, :size] + recurrent[:, :size])
            z = gate_act(p[:, 2 * size :] + recurrent[:, 2 * size :])
            o = act(p[:, size : 2 * size] + r * recurrent[:, size : 2 * size])
        else:
            recurrent = h @ w_gates  # (B, 2H)
            r = gate_act(p[:, :size] + recurrent[:, :size])
            z = gate_act(p[:, 2 * size :] + recurrent[:, size:])
            o = act(p[:, size : 2 * size] + (r * h) @ w_out)
        return ((1 - z) * o + z * h,)

    return step


@register("gru", static=_STATIC + ("recurrent_activation", "reset_after"))
def gru(
    ctx: OpContext,
    x: mx.array,
    initial_h: mx.array,
    weight_ih: mx.array,
    weight_hh: mx.array,
    bias: mx.array | None = None,
    direction="forward",
    output_sequence=False,
    recurrent_activation="sigmoid",
    activation="tanh",
    reset_after=False,
    input_bias: mx.array | None = None,
) -> tuple[mx.array, mx.array]:
    dtype = compute_dtype(x.dtype)
    reverse = _direction(direction, ("forward", "reverse")) == "reverse"
    after = as_bool(reset_after)
    bias = _prepared(ctx, "bias", bias, dtype)
    input_bias = _prepared(ctx, "input_bias", input_bias, dtype)
    # before the reset, both biases simply add to the input side; after it, `bias` is the hidden side's
    input_side = input_bias if after else _sum_optional(bias, input_bias)
    w_hh = _prepared(ctx, "weight_hh", weight_hh, dtype, transpose=True)
    step = _gru_step(w_hh, bias if after else None, after, _activation(activation), _activation(recurrent_activation))
    projected = _project(x.astype(dtype), _prepared(ctx, "weight_ih", weight_ih, dtype, transpose=True), input_side)
    hidden, (h,) = _scan(step, projected, (initial_h.astype(dtype),), reverse)
    return _sequence(hidden, output_sequence).astype(x.dtype), h.astype(x.dtype)


def _sum_optional(a: mx.array | None, b: mx.array | None) -> mx.array | None:
    if a is None or b is None:
        return a if b is None else b
    return a + b


def _lstm_step(w_hh: mx.array, peephole: mx.array | None, clip: float | None, acts: tuple[Activation, ...]) -> Step:
    """One LSTM step; `w_hh` (H, 4H) holds the [input, forget, output, cell] columns, `peephole`
    (3H,) the [input, forget, output] ones."""
    gate_act, cell_act, out_act = acts
    size = w_hh.shape[0]

    def step(p: mx.array, state: State) -> State:
        h, c = state
        gates = p + h @ w_hh  # (B, 4H)
        pre_i, pre_f = gates[:, :size], gates[:, size : 2 * size]
        pre_o, pre_z = gates[:, 2 * size : 3 * size], gates[:, 3 * size :]
        if peephole is not None:
            pre_i = pre_i + c * peephole[:size]
            pre_f = pre_f + c * peephole[size : 2 * size]
        c = gate_act(pre_f) * c + gate_act(pre_i) * cell_act(pre_z)
        if clip is not None:
            c = mx.clip(c, -clip, clip)
        if peephole is not None:
            pre_o = pre_o + c * peephole[2 * size :]
        return gate_act(pre_o) * out_act(c), c

    return step


def _lstm_pass(
    ctx: OpContext,
    suffix: str,
    x: mx.array,
    state: State,
    params: dict[str, mx.array | None],
    acts: tuple[Activation, ...],
    clip: float | None,
    reverse: bool,
) -> tuple[list[mx.array], State]:
    """One direction's pass with the weights named `weight_ih{suffix}` etc."""
    dtype = x.dtype
    w_ih, w_hh, bias, peephole = (
        _prepared(ctx, name + suffix, params[name + suffix], dtype, transpose=name.startswith("weight"))
        for name in ("weight_ih", "weight_hh", "bias", "peephole")
    )
    if w_ih is None or w_hh is None:
        raise ValueError(f"lstm needs weight_ih{suffix} and weight_hh{suffix}")
    return _scan(_lstm_step(w_hh, peephole, clip, acts), _project(x, w_ih, bias), state, reverse)


@register("lstm", static=_STATIC + ("recurrent_activation", "cell_activation", "clip"))
def lstm(
    ctx: OpContext,
    x: mx.array,
    initial_h: mx.array,
    initial_c: mx.array,
    weight_ih: mx.array,
    weight_hh: mx.array,
    bias: mx.array | None = None,
    peephole: mx.array | None = None,
    weight_ih_back: mx.array | None = None,
    weight_hh_back: mx.array | None = None,
    bias_back: mx.array | None = None,
    peephole_back: mx.array | None = None,
    direction="forward",
    output_sequence=False,
    recurrent_activation="sigmoid",
    cell_activation="tanh",
    activation="tanh",
    clip=None,
) -> tuple[mx.array, mx.array, mx.array]:
    dtype = compute_dtype(x.dtype)
    direction = _direction(direction, ("forward", "reverse", "bidirectional"))
    acts = tuple(_activation(a) for a in (recurrent_activation, cell_activation, activation))
    limit = None if clip is None else as_float(clip)
    params = dict(
        weight_ih=weight_ih,
        weight_hh=weight_hh,
        bias=bias,
        peephole=peephole,
        weight_ih_back=weight_ih_back,
        weight_hh_back=weight_hh_back,
        bias_back=bias_back,
        peephole_back=peephole_back,
    )
    xs, h0, c0 = x.astype(dtype), initial_h.astype(dtype), initial_c.astype(dtype)
    if direction != "bidirectional":
        hidden, (h, c) = _lstm_pass(ctx, "", xs, (h0, c0), params, acts, limit, direction == "reverse")
        return _sequence(hidden, output_sequence).astype(x.dtype), h.astype(x.dtype), c.astype(x.dtype)
    if weight_ih_back is None or weight_hh_back is None:
        raise ValueError("a bidirectional lstm needs weight_ih_back and weight_hh_back")
    size = h0.shape[-1] // 2  # initial states are (B, 2H): [forward | backward]
    forward, (h_f, c_f) = _lstm_pass(ctx, "", xs, (h0[:, :size], c0[:, :size]), params, acts, limit, False)
    backward, (h_b, c_b) = _lstm_pass(ctx, "_back", xs, (h0[:, size:], c0[:, size:]), params, acts, limit, True)
    if as_bool(output_sequence):
        # the backward states go back to the time steps they read: (S, B, 2H)
        out = mx.concatenate([mx.stack(forward), mx.stack(backward[::-1])], axis=-1)
    else:
        out = mx.concatenate([h_f, h_b], axis=-1)[None]  # (1, B, 2H)
    h, c = mx.concatenate([h_f, h_b], axis=-1), mx.concatenate([c_f, c_b], axis=-1)
    return out.astype(x.dtype), h.astype(x.dtype), c.astype(x.dtype)
