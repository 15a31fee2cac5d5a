"""hexgrad's .pth checkpoints read without torch: torch.save writes the fixtures, our reader must agree."""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from mlx_audio_coreml.errors import KokoroWeightsError, UnsafePickle
from mlx_audio_coreml.kokoro.weights.formats import load_pth_state
from mlx_audio_coreml.kokoro.weights.pth import read_pth

torch = pytest.importorskip("torch")  # only to write fixtures; the reader never imports it


def test_reader_returns_what_torch_saved(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = torch.randn(6, 4)
    tree = {
        "f32": torch.randn(3, 5),
        "transposed": base.t(),  # a strided view: (4, 6) with strides (1, 4)
        "sliced": base[2:5, 1:3],  # an offset into a shared storage
        "bf16": torch.randn(7).to(torch.bfloat16),
        "f16": torch.randn(2, 2).half(),
        "ids": torch.arange(5),
        "param": torch.nn.Parameter(torch.ones(2, 3)),
        "nested": OrderedDict(a=torch.zeros(1), b=torch.tensor(3.5)),
    }
    torch.save(tree, tmp_path / "x.pth")
    got = read_pth(tmp_path / "x.pth")
    for key in ("f32", "transposed", "sliced", "f16", "ids"):
        np.testing.assert_array_equal(got[key], tree[key].numpy(), err_msg=key)
    np.testing.assert_array_equal(got["bf16"], tree["bf16"].float().numpy())
    np.testing.assert_array_equal(got["param"], np.ones((2, 3), np.float32))
    assert isinstance(got["nested"], OrderedDict) and float(got["nested"]["b"]) == 3.5


class _Exploit:
    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("touch PWNED",))


def test_reader_refuses_any_other_global(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"w": _Exploit()}, protocol=2))
    with pytest.raises(UnsafePickle) as err:
        read_pth(tmp_path / "evil.pth")
    assert "system" in err.value.name
    assert not (tmp_path / "PWNED").exists()


def test_a_legacy_non_zip_pickle_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "old.pth").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(KokoroWeightsError, match="not a torch zip"):
        read_pth(tmp_path / "old.pth")


def _hexgrad_modules() -> dict[str, torch.nn.Module]:
    """A few modules of each kind Kokoro uses, weight-normed as hexgrad does."""
    wn = torch.nn.utils.parametrizations.weight_norm
    old_wn = torch.nn.utils.weight_norm  # hexgrad's released checkpoint stores weight_g / weight_v
    torch.manual_seed(1)
    return {
        "decoder.encode.conv1": wn(torch.nn.Conv1d(6, 4, 3)),
        "decoder.generator.ups.0": old_wn(torch.nn.ConvTranspose1d(4, 2, 6, 3)),
        "predictor.F0.1.pool": wn(torch.nn.ConvTranspose1d(4, 4, 3, 2, groups=4)),
        "predictor.lstm": torch.nn.LSTM(5, 3, batch_first=True, bidirectional=True),
        "predictor.F0_proj": torch.nn.Conv1d(4, 1, 1),
        "bert_encoder": torch.nn.Linear(4, 2),
        "decoder.encode.norm1.norm": torch.nn.InstanceNorm1d(4, affine=True),  # identity, dropped
    }


def _write_hexgrad_checkpoint(path: Path, modules: dict[str, torch.nn.Module]) -> None:
    parts: dict[str, OrderedDict] = {}
    for prefix, module in modules.items():
        part, _, rest = prefix.partition(".")
        for key, value in module.state_dict().items():
            name = f"module.{rest}.{key}" if rest else f"module.{key}"
            parts.setdefault(part, OrderedDict())[name] = value
    parts["bert"] = OrderedDict(
        {"module.pooler.weight": torch.ones(2, 2), "module.embeddings.position_ids": torch.arange(4)[None]}
    )
    torch.save(parts, path)


@pytest.mark.filterwarnings("ignore:.*weight_norm.*:FutureWarning")
def test_hexgrad_checkpoint_becomes_the_canonical_state(tmp_path: Path) -> None:
    modules = _hexgrad_modules()
    _write_hexgrad_checkpoint(tmp_path / "kokoro-v1_0.pth", modules)
    expected = {  # canonical: weight norm folded, pooler / position ids / InstanceNorm affine dropped
        "decoder.encode.conv1.weight": (4, 6, 3),
        "decoder.encode.conv1.bias": (4,),
        "decoder.generator.ups.0.weight": (4, 2, 6),
        "decoder.generator.ups.0.bias": (2,),
        "predictor.F0.1.pool.weight": (4, 1, 3),
        "predictor.F0.1.pool.bias": (4,),
        "predictor.F0_proj.weight": (1, 4, 1),
        "predictor.F0_proj.bias": (1,),
        "bert_encoder.weight": (2, 4),
        "bert_encoder.bias": (2,),
        **{f"predictor.lstm.{name}": tuple(p.shape) for name, p in modules["predictor.lstm"].named_parameters()},
    }
    state = load_pth_state(tmp_path / "kokoro-v1_0.pth", expected)
    assert set(state) == set(expected)
    for prefix in ("decoder.encode.conv1", "decoder.generator.ups.0", "predictor.F0.1.pool"):
        folded = modules[prefix].weight.detach().numpy()  # torch's own weight norm
        np.testing.assert_allclose(state[f"{prefix}.weight"], folded, rtol=1e-5, atol=1e-6)
    lstm = modules["predictor.lstm"]
    np.testing.assert_array_equal(
        state["predictor.lstm.weight_hh_l0_reverse"], lstm.weight_hh_l0_reverse.detach().numpy()
    )


def test_a_non_identity_instance_norm_is_refused(tmp_path: Path) -> None:
    modules = {"decoder.encode.norm1.norm": torch.nn.InstanceNorm1d(3, affine=True)}
    with torch.no_grad():
        modules["decoder.encode.norm1.norm"].weight.mul_(2)
    _write_hexgrad_checkpoint(tmp_path / "k.pth", modules)
    with pytest.raises(KokoroWeightsError, match="not the identity"):
        load_pth_state(tmp_path / "k.pth", {})
