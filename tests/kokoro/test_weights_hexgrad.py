"""The canonical state against hexgrad's own PyTorch model, when it (and transformers) are importable.

Run: pip install transformers and hexgrad's `kokoro` package (or put its source on PYTHONPATH).
- The canonical keys must be exactly hexgrad's state_dict less the tensors Kokoro does not use.
- hexgrad's model on the dequantized real weights must predict the durations onnxruntime predicts
  on the int8 graph (its activations are float, the graph's uint8, so a value near .5 may round
  the other way: almost all equal, none off by more than one frame).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnx_reference import OnnxReference

from mlx_audio_coreml.kokoro.weights import load_kokoro_folder
from mlx_audio_coreml.kokoro.weights.canonical import canonical_shapes

transformers = pytest.importorskip("transformers", reason="hexgrad's model needs transformers (AlbertModel)")
modules = pytest.importorskip("kokoro.modules", reason="hexgrad's kokoro package is not installed")
istftnet = pytest.importorskip("kokoro.istftnet", reason="hexgrad's kokoro package is not installed")
torch = pytest.importorskip("torch")

CONFIG = Path(__file__).with_name("hexgrad_config.json")  # hexgrad/Kokoro-82M config.json, vocabulary left out


def _hexgrad_parts(config: dict, decoder: bool = True) -> dict[str, torch.nn.Module]:
    parts = {
        "bert": modules.CustomAlbert(transformers.AlbertConfig(vocab_size=config["n_token"], **config["plbert"])),
        "bert_encoder": torch.nn.Linear(config["plbert"]["hidden_size"], config["hidden_dim"]),
        "predictor": modules.ProsodyPredictor(
            style_dim=config["style_dim"],
            d_hid=config["hidden_dim"],
            nlayers=config["n_layer"],
            max_dur=config["max_dur"],
            dropout=config["dropout"],
        ),
        "text_encoder": modules.TextEncoder(
            channels=config["hidden_dim"],
            kernel_size=config["text_encoder_kernel_size"],
            depth=config["n_layer"],
            n_symbols=config["n_token"],
        ),
    }
    if decoder:
        parts["decoder"] = istftnet.Decoder(
            dim_in=config["hidden_dim"],
            style_dim=config["style_dim"],
            dim_out=config["n_mels"],
            disable_complex=True,
            **config["istftnet"],
        )
    return parts


def _hexgrad_state_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for part, module in _hexgrad_parts(config).items():
        for key, value in module.state_dict().items():
            if key.endswith("parametrizations.weight.original0"):
                continue  # weight norm's g: folded into the weight
            shapes[f"{part}.{key.replace('.parametrizations.weight.original1', '.weight')}"] = tuple(value.shape)
    return shapes


def test_canonical_keys_are_hexgrads_less_unused_tensors() -> None:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    hexgrad = _hexgrad_state_shapes(config)
    ours = canonical_shapes(config)
    unused = {
        k
        for k in hexgrad
        if k.startswith(("bert.pooler.", "decoder.generator.stft."))
        or k.endswith((".norm.weight", ".norm.bias", "position_ids"))
    }
    assert {k: s for k, s in hexgrad.items() if k not in unused} == ours


def _load_into(parts: dict[str, torch.nn.Module], state: dict[str, np.ndarray]) -> None:
    """Our canonical state into hexgrad's modules: weight norm as v = W, g = ||W||; unused tensors kept."""
    for part, module in parts.items():
        new = {}
        for key, value in module.state_dict().items():
            name = f"{part}.{key}"
            folded = name.replace(".parametrizations.weight.original0", ".weight").replace(
                ".parametrizations.weight.original1", ".weight"
            )
            if name.endswith("original0"):
                w = state[folded]
                new[key] = torch.from_numpy(np.linalg.norm(w.reshape(w.shape[0], -1), axis=1).reshape(value.shape))
            else:
                new[key] = torch.from_numpy(state[folded]) if folded in state else value
        module.load_state_dict(new)
        module.eval()


def _hexgrad_durations(parts: dict[str, torch.nn.Module], ids: list[int], ref_s: np.ndarray) -> np.ndarray:
    """hexgrad's KModel.forward_with_tokens up to pred_dur."""
    tokens = torch.LongTensor([ids])
    lengths = torch.full((1,), len(ids), dtype=torch.long)
    mask = torch.gt(torch.arange(len(ids)).unsqueeze(0) + 1, lengths.unsqueeze(1))
    with torch.no_grad():
        d_en = parts["bert_encoder"](parts["bert"](tokens, attention_mask=(~mask).int())).transpose(-1, -2)
        d = parts["predictor"].text_encoder(d_en, torch.from_numpy(ref_s[:, 128:]), lengths, mask)
        x, _ = parts["predictor"].lstm(d)
        duration = torch.sigmoid(parts["predictor"].duration_proj(x)).sum(axis=-1)
    return torch.round(duration).clamp(min=1).long().squeeze().numpy()


def test_hexgrads_model_on_our_state_predicts_the_graphs_durations(kokoro_dir: Path) -> None:
    weights = load_kokoro_folder(kokoro_dir)
    parts = _hexgrad_parts(weights.config, decoder=False)
    _load_into(parts, weights.state)
    phonemes = "ðə kwˈɪk bɹˈaʊn fˈɑːks ʤˈʌmps ˈoʊvəɹ ðə lˈeɪzi dˈɑːɡ."
    ids = [0, *(weights.vocab[p] for p in phonemes if p in weights.vocab), 0]
    ref_s = weights.voice_library().style("jf_alpha", len(ids) - 2)
    ours = _hexgrad_durations(parts, ids, ref_s)
    graph = OnnxReference(kokoro_dir / "kokoro-v1.0.int8.onnx").run(ids, ref_s).durations
    assert np.abs(ours - graph).max() <= 1
    assert (ours == graph).mean() >= 0.9
