"""VoiceLibrary: lookup, blending, typed errors; real packs when the Kokoro folder is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlx_audio_coreml.errors import (
    InvalidVoiceSpec,
    KokoroInputError,
    KokoroWeightsError,
    UnknownVoice,
)
from mlx_audio_coreml.kokoro.voices import (
    PACK_SHAPE,
    VoiceLibrary,
    parse_spec,
    style_for,
)


@pytest.fixture()
def library(tmp_path: Path) -> VoiceLibrary:
    rng = np.random.default_rng(0)
    for name in ("af_a", "am_b", "bf_c"):
        np.save(tmp_path / f"{name}.npy", rng.standard_normal(PACK_SHAPE).astype(np.float32))
    return VoiceLibrary(tmp_path)


def test_names_lists_the_folder_sorted(library: VoiceLibrary) -> None:
    assert library.names() == ["af_a", "am_b", "bf_c"]


def test_single_voice_is_the_pack_itself(library: VoiceLibrary, tmp_path: Path) -> None:
    np.testing.assert_array_equal(library.get("am_b"), np.load(tmp_path / "am_b.npy"))


def test_weighted_blend_normalizes_weights(library: VoiceLibrary) -> None:
    a, b = library.get("af_a"), library.get("am_b")
    np.testing.assert_allclose(library.get("af_a:0.7,am_b:0.3"), 0.7 * a + 0.3 * b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(library.get("af_a:7, am_b:3"), library.get("af_a:0.7,am_b:0.3"), rtol=1e-6, atol=1e-6)


def test_comma_list_is_an_equal_mix(library: VoiceLibrary) -> None:
    expected = (library.get("af_a") + library.get("am_b") + library.get("bf_c")) / 3
    np.testing.assert_allclose(library.get("af_a,am_b,bf_c"), expected, rtol=1e-6, atol=1e-6)


def test_unknown_voice_names_the_known_ones(library: VoiceLibrary) -> None:
    with pytest.raises(UnknownVoice) as err:
        library.get("af_a:0.5,zz_nope:0.5")
    assert err.value.name == "zz_nope"
    assert err.value.known == ["af_a", "am_b", "bf_c"]
    assert "af_a, am_b, bf_c" in str(err.value)


@pytest.mark.parametrize("spec", ["", "a:x", "a:-1", "a:0,b:0", "a:inf", ",a"])
def test_bad_specs_raise_invalid_voice_spec(spec: str) -> None:
    with pytest.raises(InvalidVoiceSpec) as err:
        parse_spec(spec)
    assert err.value.spec == spec


def test_repeated_names_add_their_weights() -> None:
    assert parse_spec("a:0.25, b:0.5, a:0.25") == [("a", 0.5), ("b", 0.5)]


def test_style_is_the_row_for_the_token_count(library: VoiceLibrary) -> None:
    pack = library.get("bf_c")
    np.testing.assert_array_equal(library.style("bf_c", 12), pack[11].reshape(1, 256))
    with pytest.raises(KokoroInputError):
        style_for(pack, 0)
    with pytest.raises(KokoroInputError):
        style_for(pack, 511)


def test_a_misshapen_pack_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "bad.npy", np.zeros((10, 256), np.float32))
    with pytest.raises(KokoroWeightsError, match="bad"):
        VoiceLibrary(tmp_path).get("bad")


def test_missing_folder_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(KokoroWeightsError):
        VoiceLibrary(tmp_path / "nope")


def test_real_voices_are_the_five_japanese_packs(kokoro_dir: Path) -> None:
    voices = VoiceLibrary(kokoro_dir / "voices")
    assert voices.names() == ["jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"]
    for name in voices.names():
        pack = voices.get(name)
        assert pack.shape == PACK_SHAPE and pack.dtype == np.float32
        assert 0.01 < float(np.abs(pack).mean()) < 10  # real styles, not zeros or garbage
    mixed = voices.get("jf_alpha:0.5,jm_kumo:0.5")
    np.testing.assert_allclose(mixed, (voices.get("jf_alpha") + voices.get("jm_kumo")) / 2, rtol=1e-6, atol=1e-6)
