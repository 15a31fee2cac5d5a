"""canonical_shapes against hexgrad's own model code, when it (and transformers) are importable.

Run: pip install transformers and hexgrad's `kokoro` package (or put its source on PYTHONPATH).
The canonical state must be exactly hexgrad's state_dict less the tensors Kokoro does not use.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlx_audio_coreml.kokoro.weights.canonical import canonical_shapes

transformers = pytest.importorskip("transformers", reason="hexgrad's model needs transformers (AlbertModel)")
modules = pytest.importorskip("kokoro.modules", reason="hexgrad's kokoro package is not installed")
istftnet = pytest.importorskip("kokoro.istftnet", reason="hexgrad's kokoro package is not installed")
torch = pytest.importorskip("torch")

CONFIG = Path(__file__).with_name("hexgrad_config.json")  # hexgrad/Kokoro-82M config.json, vocabulary left out


def _hexgrad_state_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    parts = {
        "bert": modules.CustomAlbert(transformers.AlbertConfig(vocab_size=config["n_token"], **config["plbert"])),
        "bert_encoder": torch.nn.Linear(config["plbert"]["hidden_size"], config["hidden_dim"]),
        "predictor": modules.ProsodyPredictor(style_dim=config["style_dim"], d_hid=config["hidden_dim"],
                                              nlayers=config["n_layer"], max_dur=config["max_dur"],
                                              dropout=config["dropout"]),
        "text_encoder": modules.TextEncoder(channels=config["hidden_dim"], kernel_size=config["text_encoder_kernel_size"],
                                            depth=config["n_layer"], n_symbols=config["n_token"]),
        "decoder": istftnet.Decoder(dim_in=config["hidden_dim"], style_dim=config["style_dim"],
                                    dim_out=config["n_mels"], disable_complex=True, **config["istftnet"]),
    }
    shapes = {}
    for part, module in parts.items():
        for key, value in module.state_dict().items():
            if key.endswith("parametrizations.weight.original0"):
                continue  # weight norm's g: folded into the weight
            shapes[f"{part}.{key.replace('.parametrizations.weight.original1', '.weight')}"] = tuple(value.shape)
    return shapes


def test_canonical_keys_are_hexgrads_less_unused_tensors() -> None:
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    hexgrad = _hexgrad_state_shapes(config)
    ours = canonical_shapes(config)
    unused = {k for k in hexgrad if k.startswith(("bert.pooler.", "decoder.generator.stft."))
              or k.endswith((".norm.weight", ".norm.bias", "position_ids"))}
    assert {k: s for k, s in hexgrad.items() if k not in unused} == ours
