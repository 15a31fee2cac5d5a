"""misaki is used for English when installed, and espeak-ng otherwise.

The real misaki is not tested here: its English G2P needs spaCy's en_core_web_sm model, which is
not on PyPI (spaCy downloads it from GitHub), and this machine reaches PyPI only. These tests put
a stand-in `misaki` package on the import path to check the detection and the adapter's contract.
"""

from __future__ import annotations

import sys
import types
from typing import ClassVar

import pytest
from text_support import needs_espeak

from mlx_audio_coreml.errors import PhonemizerUnavailable
from mlx_audio_coreml.kokoro.text import g2p as g2p_module
from mlx_audio_coreml.kokoro.text.g2p import EspeakG2P, MisakiG2P, make_g2p


class _StandInG2P:
    made: ClassVar[list[dict]] = []

    def __init__(self, trf: bool, british: bool, fallback: object) -> None:
        type(self).made.append({"trf": trf, "british": british})
        self.british = british

    def __call__(self, text: str) -> tuple[str, list]:
        return ("hˈɛlQ  wˈɜːld." if self.british else f"misaki:{text}"), []


@pytest.fixture
def stand_in_misaki(monkeypatch: pytest.MonkeyPatch) -> type[_StandInG2P]:
    package = types.ModuleType("misaki")
    package.__path__ = []  # a package, so find_spec("misaki") finds it
    package.__spec__ = types.SimpleNamespace(name="misaki", submodule_search_locations=[])  # type: ignore[assignment]
    english = types.ModuleType("misaki.en")
    english.G2P = _StandInG2P  # type: ignore[attr-defined]
    package.en = english  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "misaki", package)
    monkeypatch.setitem(sys.modules, "misaki.en", english)
    monkeypatch.setattr(g2p_module, "misaki_available", lambda: True)
    _StandInG2P.made = []
    return _StandInG2P


def test_auto_uses_misaki_for_english_when_installed(stand_in_misaki: type[_StandInG2P]) -> None:
    g2p = make_g2p("en-gb")
    assert isinstance(g2p, MisakiG2P)
    assert g2p("Hello world.") == "hˈɛlQ wˈɜːld."
    assert stand_in_misaki.made == [{"trf": False, "british": True}]


def test_misaki_gets_normalized_text(stand_in_misaki: type[_StandInG2P]) -> None:
    assert make_g2p("en-us")("Wait...  what") == "misaki:Wait… what"


@needs_espeak
def test_auto_uses_espeak_for_other_languages_even_with_misaki(stand_in_misaki: type[_StandInG2P]) -> None:
    assert isinstance(make_g2p("fr"), EspeakG2P)


@needs_espeak
def test_auto_falls_back_to_espeak_when_misaki_cannot_start(
    stand_in_misaki: type[_StandInG2P], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*args: object, **kwargs: object) -> None:
        raise SystemExit(1)  # what spaCy's download does when it cannot fetch en_core_web_sm

    monkeypatch.setattr(stand_in_misaki, "__init__", no_model)
    assert isinstance(make_g2p("en-us"), EspeakG2P)
    with pytest.raises(PhonemizerUnavailable):
        make_g2p("en-us", engine="misaki")


@needs_espeak
def test_auto_uses_espeak_when_misaki_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(g2p_module, "misaki_available", lambda: False)
    assert isinstance(make_g2p("en-us"), EspeakG2P)


def test_real_misaki_english() -> None:
    pytest.importorskip("spacy", reason="misaki's English needs spaCy and en_core_web_sm (not on PyPI)")
    try:
        g2p = MisakiG2P("en-us")
    except (Exception, SystemExit) as exc:  # noqa: BLE001 (any failure to start is a skip here)
        pytest.skip(f"misaki cannot start here: {exc!r}")
    assert g2p("Hello, world!") == "həlˈO, wˈɜɹld!"
