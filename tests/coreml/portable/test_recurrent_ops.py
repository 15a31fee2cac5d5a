"""The portable runtime's rnn, gru and lstm against a numpy reference written from coremltools' op
definitions (gate order, directions, output_sequence, activations, peephole, clip, iOS18 GRU
reset_after), with GRU reset_after also checked against torch.nn.GRU when torch is installed."""

from __future__ import annotations

import numpy as np
import pytest
from portable_helpers import assert_close, ct, mb, run_program

rng = np.random.default_rng(7)
S, B, IN, H = 4, 2, 3, 5  # sequence, batch, input size, hidden size


def _rand(*shape: int) -> np.ndarray:
    return (rng.uniform(-1, 1, size=shape)).astype(np.float32)


def _act(name: str, v: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1 / (1 + np.exp(-v))
    if name in ("tanh", "scaled_tanh"):
        return np.tanh(v)
    if name == "relu":
        return np.maximum(v, 0)
    if name in ("sigmoid_hard", "hard_sigmoid"):
        return np.clip(0.2 * v + 0.5, 0, 1)
    assert name == "linear"
    return v


def _steps(x: np.ndarray, reverse: bool):
    return x[::-1] if reverse else x


def _outputs(hs: list[np.ndarray], output_sequence: bool) -> np.ndarray:
    return np.stack(hs) if output_sequence else hs[-1][None]


def ref_rnn(x, h, w_ih, w_hh, b, act, reverse, output_sequence):
    hs = []
    for x_t in _steps(x.astype(np.float64), reverse):
        h = _act(act, x_t @ w_ih.T + h @ w_hh.T + b)
        hs.append(h)
    return _outputs(hs, output_sequence), h


def ref_gru(x, h, w_ih, w_hh, b, act, gate_act, reverse, output_sequence, reset_after=False, b_in=None):
    """Gates stacked [reset, output, update]; b is the hidden side's bias when reset_after."""
    w_ir, w_io, w_iz = np.split(w_ih, 3)
    w_hr, w_ho, w_hz = np.split(w_hh, 3)
    b_in = np.zeros(3 * H) if b_in is None else b_in
    b_ir, b_io, b_iz = np.split(b_in, 3)
    b_hr, b_ho, b_hz = np.split(b, 3)
    hs = []
    for x_t in _steps(x.astype(np.float64), reverse):
        r = _act(gate_act, x_t @ w_ir.T + b_ir + h @ w_hr.T + b_hr)
        z = _act(gate_act, x_t @ w_iz.T + b_iz + h @ w_hz.T + b_hz)
        if reset_after:
            o = _act(act, x_t @ w_io.T + b_io + r * (h @ w_ho.T + b_ho))
        else:
            o = _act(act, x_t @ w_io.T + b_io + (r * h) @ w_ho.T + b_ho)
        h = (1 - z) * o + z * h
        hs.append(h)
    return _outputs(hs, output_sequence), h


def ref_lstm(x, h, c, w_ih, w_hh, b, p, acts, clip, reverse):
    """Gates stacked [input, forget, output, cell]; the hidden states in processing order."""
    gate, cell, out = acts
    hs = []
    for x_t in _steps(x.astype(np.float64), reverse):
        g_i, g_f, g_o, g_z = np.split(x_t @ w_ih.T + h @ w_hh.T + b, 4, axis=-1)
        i = _act(gate, g_i + c * p[:H])
        f = _act(gate, g_f + c * p[H : 2 * H])
        c = f * c + i * _act(cell, g_z)
        if clip is not None:
            c = np.clip(c, -clip, clip)
        h = _act(gate, g_o + c * p[2 * H :]) * _act(out, c)
        hs.append(h)
    return hs, h, c


RNN_W_IH, RNN_W_HH, RNN_B = _rand(H, IN), _rand(H, H), _rand(H)


@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_matches_reference_for_each_activation(tmp_path, reverse):
    acts = ["tanh", "relu", "sigmoid", "sigmoid_hard", "scaled_tanh", "linear"]
    direction = "reverse" if reverse else "forward"
    x, h0 = _rand(S, B, IN), _rand(B, H)

    def build(x, h0):
        outs = []
        for index, act in enumerate(acts):
            seq, last = mb.rnn(
                x=x,
                initial_h=h0,
                weight_ih=RNN_W_IH,
                weight_hh=RNN_W_HH,
                bias=RNN_B,
                direction=direction,
                output_sequence=index % 2 == 0,
                activation=act,
            )
            outs += [seq, last]
        return tuple(outs)

    got = run_program(tmp_path, build, [x, h0], opset=ct.target.iOS15)
    for index, act in enumerate(acts):
        want_seq, want_h = ref_rnn(x, h0, RNN_W_IH, RNN_W_HH, RNN_B, act, reverse, index % 2 == 0)
        assert_close(got[2 * index], want_seq)
        assert_close(got[2 * index + 1], want_h)


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_gru_matches_reference_with_and_without_bias(tmp_path, direction):
    w_ih, w_hh, b = _rand(3 * H, IN), _rand(3 * H, H), _rand(3 * H)
    x, h0 = _rand(S, B, IN), _rand(B, H)
    cases = [("tanh", "sigmoid", True), ("sigmoid", "tanh", False)]

    def build(x, h0):
        outs = []
        for act, gate_act, has_bias in cases:
            extra = {"bias": b} if has_bias else {}
            outs += mb.gru(
                x=x,
                initial_h=h0,
                weight_ih=w_ih,
                weight_hh=w_hh,
                direction=direction,
                output_sequence=True,
                activation=act,
                recurrent_activation=gate_act,
                **extra,
            )
        return tuple(outs)

    got = run_program(tmp_path, build, [x, h0], opset=ct.target.iOS15)
    for index, (act, gate_act, has_bias) in enumerate(cases):
        bias = b if has_bias else np.zeros(3 * H)
        want_seq, want_h = ref_gru(x, h0, w_ih, w_hh, bias, act, gate_act, direction == "reverse", True)
        assert_close(got[2 * index], want_seq)
        assert_close(got[2 * index + 1], want_h)


def test_ios18_gru_reset_after_and_input_bias_match_reference(tmp_path):
    w_ih, w_hh, b, b_in = _rand(3 * H, IN), _rand(3 * H, H), _rand(3 * H), _rand(3 * H)
    x, h0 = _rand(S, B, IN), _rand(B, H)

    def build(x, h0):
        after = mb.gru(
            x=x,
            initial_h=h0,
            weight_ih=w_ih,
            weight_hh=w_hh,
            bias=b,
            input_bias=b_in,
            reset_after=True,
            output_sequence=True,
        )
        before = mb.gru(
            x=x,
            initial_h=h0,
            weight_ih=w_ih,
            weight_hh=w_hh,
            bias=b,
            input_bias=b_in,
            reset_after=False,
            output_sequence=False,
            direction="reverse",
        )
        return tuple(after) + tuple(before)

    got = run_program(tmp_path, build, [x, h0], opset=ct.target.iOS18)
    want_after = ref_gru(x, h0, w_ih, w_hh, b, "tanh", "sigmoid", False, True, reset_after=True, b_in=b_in)
    want_before = ref_gru(x, h0, w_ih, w_hh, b, "tanh", "sigmoid", True, False, b_in=b_in)
    for got_value, want_value in zip(got, want_after + want_before):
        assert_close(got_value, want_value)


def test_ios18_gru_reset_after_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    layer = torch.nn.GRU(IN, H)  # torch stacks [reset, update, new]; MIL wants [reset, new, update]
    state = {k: v.detach().numpy() for k, v in layer.state_dict().items()}

    def mil_order(v: np.ndarray) -> np.ndarray:
        r, z, n = np.split(v, 3)
        return np.concatenate([r, n, z]).astype(np.float32)

    x, h0 = _rand(S, B, IN), _rand(B, H)

    def build(x, h0):
        return mb.gru(
            x=x,
            initial_h=h0,
            weight_ih=mil_order(state["weight_ih_l0"]),
            weight_hh=mil_order(state["weight_hh_l0"]),
            input_bias=mil_order(state["bias_ih_l0"]),
            bias=mil_order(state["bias_hh_l0"]),
            reset_after=True,
            output_sequence=True,
        )

    got_seq, got_h = run_program(tmp_path, build, [x, h0], opset=ct.target.iOS18)
    with torch.no_grad():
        want_seq, want_h = layer(torch.from_numpy(x), torch.from_numpy(h0)[None])
    assert_close(got_seq, want_seq.numpy())
    assert_close(got_h, want_h.numpy()[0])


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_lstm_matches_reference_with_peephole_clip_and_activations(tmp_path, direction):
    w_ih, w_hh, b, p = _rand(4 * H, IN), _rand(4 * H, H), _rand(4 * H), _rand(3 * H)
    x, h0, c0 = _rand(S, B, IN), _rand(B, H), _rand(B, H)
    cases = [
        (("sigmoid", "tanh", "tanh"), None, True),
        (("hard_sigmoid", "relu", "scaled_tanh"), 0.3, False),
        (("sigmoid", "linear", "relu"), 0.05, True),
    ]

    def build(x, h0, c0):
        outs = []
        for acts, clip, seq in cases:
            extra = {} if clip is None else {"clip": np.float32(clip)}
            outs += mb.lstm(
                x=x,
                initial_h=h0,
                initial_c=c0,
                weight_ih=w_ih,
                weight_hh=w_hh,
                bias=b,
                peephole=p,
                direction=direction,
                output_sequence=seq,
                recurrent_activation=acts[0],
                cell_activation=acts[1],
                activation=acts[2],
                **extra,
            )
        return tuple(outs)

    got = run_program(tmp_path, build, [x, h0, c0], opset=ct.target.iOS15)
    for index, (acts, clip, seq) in enumerate(cases):
        hs, h, c = ref_lstm(x, h0, c0, w_ih, w_hh, b, p, acts, clip, direction == "reverse")
        assert_close(got[3 * index], _outputs(hs, seq))
        assert_close(got[3 * index + 1], h)
        assert_close(got[3 * index + 2], c)


@pytest.mark.parametrize("output_sequence", [True, False])
def test_bidirectional_lstm_aligns_backward_states_with_their_time_steps(tmp_path, output_sequence):
    fw = [_rand(4 * H, IN), _rand(4 * H, H), _rand(4 * H), _rand(3 * H)]
    bw = [_rand(4 * H, IN), _rand(4 * H, H), _rand(4 * H), _rand(3 * H)]
    x, h0, c0 = _rand(S, B, IN), _rand(B, 2 * H), _rand(B, 2 * H)

    def build(x, h0, c0):
        return mb.lstm(
            x=x,
            initial_h=h0,
            initial_c=c0,
            weight_ih=fw[0],
            weight_hh=fw[1],
            bias=fw[2],
            peephole=fw[3],
            weight_ih_back=bw[0],
            weight_hh_back=bw[1],
            bias_back=bw[2],
            peephole_back=bw[3],
            direction="bidirectional",
            output_sequence=output_sequence,
        )

    got_seq, got_h, got_c = run_program(tmp_path, build, [x, h0, c0], opset=ct.target.iOS15)
    acts = ("sigmoid", "tanh", "tanh")
    hs_f, h_f, c_f = ref_lstm(x, h0[:, :H], c0[:, :H], *fw, acts, None, False)
    hs_b, h_b, c_b = ref_lstm(x, h0[:, H:], c0[:, H:], *bw, acts, None, True)
    if output_sequence:
        want_seq = np.concatenate([np.stack(hs_f), np.stack(hs_b[::-1])], axis=-1)
    else:
        want_seq = np.concatenate([h_f, h_b], axis=-1)[None]
    assert_close(got_seq, want_seq)
    assert_close(got_h, np.concatenate([h_f, h_b], axis=-1))
    assert_close(got_c, np.concatenate([c_f, c_b], axis=-1))


def test_float16_programs_run_all_three_ops(tmp_path):
    w4, u4, b4 = _rand(4 * H, IN), _rand(4 * H, H), _rand(4 * H)
    w3, u3, b3 = _rand(3 * H, IN), _rand(3 * H, H), _rand(3 * H)
    x, h0, c0 = _rand(S, B, IN), _rand(B, H), _rand(B, H)

    def build(x, h0, c0):
        lstm_seq, _, _ = mb.lstm(
            x=x, initial_h=h0, initial_c=c0, weight_ih=w4, weight_hh=u4, bias=b4, output_sequence=True
        )
        gru_seq, _ = mb.gru(x=x, initial_h=h0, weight_ih=w3, weight_hh=u3, bias=b3, output_sequence=True)
        rnn_seq, _ = mb.rnn(x=x, initial_h=h0, weight_ih=RNN_W_IH, weight_hh=RNN_W_HH, bias=RNN_B, output_sequence=True)
        return lstm_seq, gru_seq, rnn_seq

    got = run_program(tmp_path, build, [x, h0, c0], precision="fp16", opset=ct.target.iOS17)
    hs, _, _ = ref_lstm(x, h0, c0, w4, u4, b4, np.zeros(3 * H), ("sigmoid", "tanh", "tanh"), None, False)
    assert_close(got[0], np.stack(hs), "fp16")
    assert_close(got[1], ref_gru(x, h0, w3, u3, b3, "tanh", "sigmoid", False, True)[0], "fp16")
    assert_close(got[2], ref_rnn(x, h0, RNN_W_IH, RNN_W_HH, RNN_B, "tanh", False, True)[0], "fp16")
