"""Phoneme strings to token ids: the vocabulary file, typed errors for unknown phonemes and empty input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from text_support import VOCAB, needs_espeak

from mlx_audio_coreml.errors import EmptyText, MlxAudioCoreMLError, UnknownPhoneme
from mlx_audio_coreml.kokoro.text import TextFrontend, load_vocab, tokenize

TINY = {" ": 16, ".": 4, "h": 50, "ə": 83, "l": 54, "ˈ": 156, "O": 31}


def test_tokenize_maps_each_symbol_to_its_id() -> None:
    assert tokenize("həlˈO.", TINY) == [50, 83, 54, 156, 31, 4]


def test_unknown_phonemes_are_named_once_each_in_order() -> None:
    with pytest.raises(UnknownPhoneme) as caught:
        tokenize("hɛlɛ ʘx", TINY)
    error = caught.value
    assert error.phonemes == ["ɛ", "ʘ", "x"]
    assert error.source == "hɛlɛ ʘx"
    assert "U+0298" in str(error) and isinstance(error, MlxAudioCoreMLError)


@pytest.mark.parametrize("name", ["vocab.json", "config.json"])
def test_vocab_loads_from_vocab_json_or_config_json(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(json.dumps({"n_token": 178, "vocab": TINY} if name == "config.json" else {"vocab": TINY}))
    assert load_vocab(path) == TINY


def test_a_file_without_a_vocabulary_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vocab.json"
    path.write_text("{}")
    with pytest.raises(ValueError):
        load_vocab(path)


@pytest.mark.parametrize("text", ["", "   ", "...", "?!", "“”", "— , ;"])
def test_empty_or_punctuation_only_text_is_empty_text(text: str) -> None:
    with pytest.raises(EmptyText):
        list(TextFrontend(VOCAB, engine="espeak").chunks(text))


@pytest.mark.parametrize("phonemes", ["", "  ", ".,!"])
def test_empty_or_punctuation_only_phonemes_are_empty_text(phonemes: str) -> None:
    with pytest.raises(EmptyText):
        list(TextFrontend(VOCAB, engine="espeak").chunks(phonemes=phonemes))


def test_given_phonemes_skip_g2p_and_keep_their_symbols() -> None:
    chunks = list(TextFrontend(VOCAB, engine="espeak").chunks(phonemes="həlˈO,   wˈɜɹld!"))
    assert [c.phonemes for c in chunks] == ["həlˈO, wˈɜɹld!"]
    assert list(chunks[0].token_ids) == tokenize("həlˈO, wˈɜɹld!", VOCAB)


def test_given_phonemes_outside_the_vocabulary_are_named() -> None:
    with pytest.raises(UnknownPhoneme) as caught:
        list(TextFrontend(VOCAB, engine="espeak").chunks(phonemes="hɛlO Ʃ"))
    assert caught.value.phonemes == ["Ʃ"]


def test_text_and_phonemes_together_are_refused() -> None:
    with pytest.raises(ValueError):
        TextFrontend(VOCAB).chunks("hi", phonemes="hˈI")


@needs_espeak
def test_real_vocabulary_ids_when_the_model_is_installed(kokoro_dir: Path) -> None:
    vocab = load_vocab(kokoro_dir / "config.json")
    chunk = next(TextFrontend(vocab, engine="espeak").chunks("Hello, world!"))
    # Ids of Kokoro v1.0's vocabulary (hexgrad's config.json): h ə l ˈ O , space w ˈ ɜ ɹ l d !
    assert chunk.token_ids == (50, 83, 54, 156, 31, 3, 16, 65, 156, 87, 123, 54, 46, 5)
