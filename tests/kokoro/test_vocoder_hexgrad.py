"""The decoder against hexgrad's own PyTorch istftnet Decoder on the same real weights, source noise off.

Skipped unless torch and hexgrad's `kokoro.istftnet` import (put hexgrad/kokoro's `kokoro/istftnet.py` and
`custom_stft.py` in a `kokoro/` folder on PYTHONPATH; they need torch only). The inputs are the int8 ONNX
graph's own decoder inputs for a real sentence. Measured: the encode/decode blocks agree to 1.1e-6
(relative L2); the generator given hexgrad's harmonic source to 0.24% (atan2 phase of near-silent STFT
bins is ill-conditioned); the whole decoder to 2.4%, which is hexgrad's float32 phase drift (its source
is 2.6e-4 off a float64 evaluation; ours keeps the phase modulo one cycle); log-mel distance 0.09 dB.
"""

from __future__ import annotations

import json

import mlx.core as mx
import numpy as np
import pytest
from audio_distance import log_mel_distance
from onnx_reference import OnnxReference

import mlx_audio_coreml  # noqa: F401  (BLAS first)
from mlx_audio_coreml.kokoro.config import KokoroConfig
from mlx_audio_coreml.kokoro.model.decoder import Decoder
from mlx_audio_coreml.kokoro.weights.safetensors_io import read_safetensors

torch = pytest.importorskip("torch")
istftnet = pytest.importorskip("kokoro.istftnet", reason="hexgrad's kokoro/istftnet.py is not on the path")

pytestmark = pytest.mark.slow

PHONEMES = "ðə kwˈɪk bɹˈaʊn fˈɑːks"
GRAPH_INPUTS = ("/encoder/MatMul_1_output_0", "/encoder/Reshape_output_0", "/encoder/Reshape_1_output_0")


def relative_l2(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.linalg.norm(got - expected) / np.linalg.norm(expected))


def hexgrad_state(state: dict[str, np.ndarray], target: dict) -> dict:
    """Canonical `decoder.*` weights as hexgrad's state_dict: a folded weight W becomes weight norm's
    (g, v) = (||W|| per output row, W); an all-zero row (int8 can give one) gets v = 1, g = 0."""
    out = {}
    for key, value in state.items():
        if not key.startswith("decoder."):
            continue
        name = key[len("decoder.") :]
        direction = name.removesuffix(".weight") + ".parametrizations.weight.original1"
        if name.endswith(".weight") and direction in target:
            weight = torch.from_numpy(value).clone()
            norm = torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), dim=1)
            weight[norm == 0] = 1.0
            out[direction] = weight
            out[direction.replace("original1", "original0")] = norm.reshape(-1, *[1] * (weight.ndim - 1))
        else:
            out[name] = torch.from_numpy(value)
    return out


@pytest.fixture(scope="module")
def run(kokoro_dir):
    """Both decoders on the same real weights and graph inputs: (ours, hexgrad's, inputs, hexgrad's captures)."""
    config = json.loads((kokoro_dir / "config.json").read_text())
    state = read_safetensors(kokoro_dir / "model.safetensors")
    ours = Decoder.from_config(KokoroConfig.from_dict(config))
    ours.load_state(state)
    theirs = istftnet.Decoder(dim_in=512, style_dim=128, dim_out=80, **config["istftnet"]).eval()
    loaded = theirs.load_state_dict(hexgrad_state(state, theirs.state_dict()), strict=False)
    # Only the InstanceNorm affine pairs (ones and zeros, not in the canonical state) stay at their defaults.
    assert all(k.endswith(("norm.weight", "norm.bias")) for k in loaded.missing_keys) and not loaded.unexpected_keys

    ids = [0] + [config["vocab"][p] for p in PHONEMES if p in config["vocab"]] + [0]
    full_style = np.load(kokoro_dir / "voices" / "jf_alpha.npy")[len(ids) - 3].reshape(1, 256)
    graph = OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx", extra_outputs=GRAPH_INPUTS).run(ids, full_style)
    inputs = [graph.extras[name] for name in GRAPH_INPUTS] + [full_style[:, :128]]

    captured = {}
    theirs.generator.register_forward_hook(lambda m, args, out: captured.update(frames=args[0].numpy()))
    theirs.generator.m_source.register_forward_hook(lambda m, args, out: captured.update(source=out[0].numpy()))
    randn_like = torch.randn_like
    torch.randn_like = torch.zeros_like  # hexgrad's source noise off (ours: key=None)
    try:
        with torch.no_grad():
            captured["audio"] = theirs(*(torch.from_numpy(x) for x in inputs)).numpy().reshape(-1)
    finally:
        torch.randn_like = randn_like
    return ours, [mx.array(x) for x in inputs], captured


def test_encode_and_decode_blocks_match_hexgrad(run):
    ours, inputs, captured = run
    frames = np.array(ours.frames(*inputs))  # (1, 2F, 512), channels last
    assert relative_l2(frames.transpose(0, 2, 1), captured["frames"]) < 1e-4


def test_generator_matches_hexgrad_given_the_same_source(run):
    ours, inputs, captured = run
    generator = ours.generator
    x = mx.array(captured["frames"].transpose(0, 2, 1))
    source = mx.array(captured["source"][..., 0])  # (1, samples)
    audio = np.array(generator.synthesize(x, inputs[3], generator.source_spectrum(source)))[0]
    assert relative_l2(audio, captured["audio"]) < 0.01


def test_whole_decoder_matches_hexgrad(run):
    ours, inputs, captured = run
    audio = np.array(ours.forward(*inputs, key=None))[0]
    assert audio.shape == captured["audio"].shape
    assert relative_l2(audio, captured["audio"]) < 0.05
    assert log_mel_distance(audio, captured["audio"]) < 0.3
