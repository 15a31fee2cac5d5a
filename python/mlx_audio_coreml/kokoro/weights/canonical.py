"""The canonical Kokoro state's keys and shapes, derived from a config the way hexgrad builds KModel.

Written from hexgrad/kokoro's `model.py`, `modules.py` and `istftnet.py` (and transformers' ALBERT):
every learned tensor the model uses, in PyTorch layouts, weight norm folded into `<conv>.weight`.
Left out on purpose (see KOKORO.md and DATA.md): `bert.pooler.*` (CustomAlbert returns the last hidden
state), `bert.embeddings.position_ids` (a buffer), the InstanceNorm affine `*.norm.weight/bias` of
AdaIN1d (identity: trained with affine=False) and the iSTFT's DFT basis (fixed buffers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ...errors import KokoroStateMismatch

Shapes = dict[str, tuple[int, ...]]


def canonical_shapes(config: Mapping[str, Any]) -> Shapes:
    """Every key of the canonical state with its shape, for hexgrad's config.json content."""
    h, s, n_token = int(config["hidden_dim"]), int(config["style_dim"]), int(config["n_token"])
    out: Shapes = {}
    out.update(_albert(config["plbert"], n_token))
    out["bert_encoder.weight"] = (h, int(config["plbert"]["hidden_size"]))
    out["bert_encoder.bias"] = (h,)
    out.update(_text_encoder(h, int(config["text_encoder_kernel_size"]), int(config["n_layer"]), n_token))
    out.update(_predictor(h, s, int(config["n_layer"]), int(config["max_dur"])))
    out.update(_decoder(h, s, config["istftnet"]))
    return out


def check_state(state: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> None:
    """Raise KokoroStateMismatch naming every missing, unexpected and misshapen key."""
    check_shapes(state, canonical_shapes(config))


def check_shapes(state: Mapping[str, np.ndarray], expected: Mapping[str, tuple[int, ...]]) -> None:
    """check_state against an explicit key -> shape table."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k}: expected {expected[k]}, got {tuple(v.shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != expected[k]
    ]
    if missing or unexpected or wrong:
        raise KokoroStateMismatch(missing, unexpected, wrong)


def _linear(prefix: str, n_out: int, n_in: int, bias: bool = True) -> Shapes:
    out: Shapes = {f"{prefix}.weight": (n_out, n_in)}
    if bias:
        out[f"{prefix}.bias"] = (n_out,)
    return out


def _conv(prefix: str, n_out: int, n_in: int, k: int, bias: bool = True) -> Shapes:
    out: Shapes = {f"{prefix}.weight": (n_out, n_in, k)}
    if bias:
        out[f"{prefix}.bias"] = (n_out,)
    return out


def _norm(prefix: str, n: int, names: tuple[str, str] = ("weight", "bias")) -> Shapes:
    return {f"{prefix}.{names[0]}": (n,), f"{prefix}.{names[1]}": (n,)}


def _lstm(prefix: str, n_in: int, hidden: int) -> Shapes:
    """A one-layer bidirectional nn.LSTM: gates (i, f, g, o) stacked on the first axis."""
    out: Shapes = {}
    for suffix in ("", "_reverse"):
        out[f"{prefix}.weight_ih_l0{suffix}"] = (4 * hidden, n_in)
        out[f"{prefix}.weight_hh_l0{suffix}"] = (4 * hidden, hidden)
        out[f"{prefix}.bias_ih_l0{suffix}"] = (4 * hidden,)
        out[f"{prefix}.bias_hh_l0{suffix}"] = (4 * hidden,)
    return out


def _albert(plbert: Mapping[str, Any], n_token: int) -> Shapes:
    d, e = int(plbert["hidden_size"]), int(plbert.get("embedding_size", 128))
    ff, n_pos = int(plbert["intermediate_size"]), int(plbert["max_position_embeddings"])
    out: Shapes = {
        "bert.embeddings.word_embeddings.weight": (n_token, e),
        "bert.embeddings.position_embeddings.weight": (n_pos, e),
        "bert.embeddings.token_type_embeddings.weight": (int(plbert.get("type_vocab_size", 2)), e),
    }
    out.update(_norm("bert.embeddings.LayerNorm", e))
    out.update(_linear("bert.encoder.embedding_hidden_mapping_in", d, e))
    layer = "bert.encoder.albert_layer_groups.0.albert_layers.0"  # ALBERT shares one layer across depth
    out.update(_norm(f"{layer}.full_layer_layer_norm", d))
    for name in ("query", "key", "value", "dense"):
        out.update(_linear(f"{layer}.attention.{name}", d, d))
    out.update(_norm(f"{layer}.attention.LayerNorm", d))
    out.update(_linear(f"{layer}.ffn", ff, d))
    out.update(_linear(f"{layer}.ffn_output", d, ff))
    return out


def _text_encoder(h: int, kernel: int, depth: int, n_token: int) -> Shapes:
    out: Shapes = {"text_encoder.embedding.weight": (n_token, h)}
    for i in range(depth):
        out.update(_conv(f"text_encoder.cnn.{i}.0", h, h, kernel))
        out.update(_norm(f"text_encoder.cnn.{i}.1", h, ("gamma", "beta")))
    out.update(_lstm("text_encoder.lstm", h, h // 2))
    return out


def _adain_resblk(prefix: str, n_in: int, n_out: int, s: int, upsample: bool = False) -> Shapes:
    """AdainResBlk1d: conv1/conv2 (k 3), AdaIN fc layers, 1x1 shortcut when widths differ, pool when upsampling."""
    out: Shapes = {}
    out.update(_conv(f"{prefix}.conv1", n_out, n_in, 3))
    out.update(_conv(f"{prefix}.conv2", n_out, n_out, 3))
    out.update(_linear(f"{prefix}.norm1.fc", 2 * n_in, s))
    out.update(_linear(f"{prefix}.norm2.fc", 2 * n_out, s))
    if n_in != n_out:
        out.update(_conv(f"{prefix}.conv1x1", n_out, n_in, 1, bias=False))
    if upsample:  # depthwise ConvTranspose1d: (in, out / groups, k)
        out[f"{prefix}.pool.weight"] = (n_in, 1, 3)
        out[f"{prefix}.pool.bias"] = (n_in,)
    return out


def _predictor(h: int, s: int, n_layer: int, max_dur: int) -> Shapes:
    out: Shapes = {}
    for i in range(n_layer):
        out.update(_lstm(f"predictor.text_encoder.lstms.{2 * i}", h + s, h // 2))
        out.update(_linear(f"predictor.text_encoder.lstms.{2 * i + 1}.fc", 2 * h, s))
    out.update(_lstm("predictor.lstm", h + s, h // 2))
    out.update(_linear("predictor.duration_proj.linear_layer", max_dur, h))
    out.update(_lstm("predictor.shared", h + s, h // 2))
    for branch in ("F0", "N"):
        out.update(_adain_resblk(f"predictor.{branch}.0", h, h, s))
        out.update(_adain_resblk(f"predictor.{branch}.1", h, h // 2, s, upsample=True))
        out.update(_adain_resblk(f"predictor.{branch}.2", h // 2, h // 2, s))
        out.update(_conv(f"predictor.{branch}_proj", 1, h // 2, 1))
    return out


def _decoder(h: int, s: int, istft: Mapping[str, Any]) -> Shapes:
    out: Shapes = {}
    out.update(_adain_resblk("decoder.encode", h + 2, 1024, s))
    for i in range(4):
        width = 1024 if i < 3 else 512
        out.update(_adain_resblk(f"decoder.decode.{i}", 1024 + 2 + 64, width, s, upsample=i == 3))
    out.update(_conv("decoder.F0_conv", 1, 1, 3))
    out.update(_conv("decoder.N_conv", 1, 1, 3))
    out.update(_conv("decoder.asr_res.0", 64, h, 1))
    out.update(_generator(s, istft))
    return out


def _adain_resblock1(prefix: str, ch: int, k: int, n_convs: int, s: int) -> Shapes:
    """AdaINResBlock1: convs1/convs2 (k, dilated), AdaIN fc layers and Snake alphas (1, ch, 1)."""
    out: Shapes = {}
    for j in range(n_convs):
        out.update(_conv(f"{prefix}.convs1.{j}", ch, ch, k))
        out.update(_conv(f"{prefix}.convs2.{j}", ch, ch, k))
        out.update(_linear(f"{prefix}.adain1.{j}.fc", 2 * ch, s))
        out.update(_linear(f"{prefix}.adain2.{j}.fc", 2 * ch, s))
        out[f"{prefix}.alpha1.{j}"] = (1, ch, 1)
        out[f"{prefix}.alpha2.{j}"] = (1, ch, 1)
    return out


def _generator(s: int, istft: Mapping[str, Any]) -> Shapes:
    g = "decoder.generator"
    rates, kernels = list(istft["upsample_rates"]), list(istft["upsample_kernel_sizes"])
    c0, n_fft = int(istft["upsample_initial_channel"]), int(istft["gen_istft_n_fft"])
    res_kernels, dilations = list(istft["resblock_kernel_sizes"]), list(istft["resblock_dilation_sizes"])
    out: Shapes = _linear(f"{g}.m_source.l_linear", 1, 9)  # harmonic_num 8: 9 harmonics merged into one
    for i, k in enumerate(kernels):
        c_in, c_out = c0 // 2**i, c0 // 2 ** (i + 1)
        out[f"{g}.ups.{i}.weight"] = (c_in, c_out, int(k))  # ConvTranspose1d: (in, out, k)
        out[f"{g}.ups.{i}.bias"] = (c_out,)
        for j, (rk, d) in enumerate(zip(res_kernels, dilations)):
            out.update(_adain_resblock1(f"{g}.resblocks.{i * len(res_kernels) + j}", c_out, int(rk), len(d), s))
        if i + 1 < len(rates):
            stride_f0 = int(np.prod(rates[i + 1 :]))
            out.update(_conv(f"{g}.noise_convs.{i}", c_out, n_fft + 2, 2 * stride_f0))
            out.update(_adain_resblock1(f"{g}.noise_res.{i}", c_out, 7, 3, s))
        else:
            out.update(_conv(f"{g}.noise_convs.{i}", c_out, n_fft + 2, 1))
            out.update(_adain_resblock1(f"{g}.noise_res.{i}", c_out, 11, 3, s))
    out.update(_conv(f"{g}.conv_post", n_fft + 2, c0 // 2 ** len(rates), 7))
    return out
