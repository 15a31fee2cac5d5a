"""The tokenizer: special, language and timestamp tokens of English-only and multilingual vocabularies."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
from model_helpers import write_tokenizer_json

from mlx_audio_coreml.errors import ModelNotFound
from mlx_audio_coreml.whisper.tokenizer import LANGUAGES, TO_LANGUAGE_CODE, Tokenizer, get_tokenizer

pytestmark = pytest.mark.realweights  # the real vocabularies come with the installed weights


@pytest.fixture(scope="module")
def english(tiny_en_dir) -> Tokenizer:
    return get_tokenizer(tiny_en_dir, multilingual=False)


@pytest.fixture(scope="module")
def multilingual(base_dir) -> Tokenizer:
    return get_tokenizer(base_dir, multilingual=True, language="fr", task="translate")


def test_english_only_special_tokens(english):
    assert (english.eot, english.sot, english.translate, english.transcribe) == (50256, 50257, 50357, 50358)
    assert (english.sot_lm, english.sot_prev, english.no_speech, english.no_timestamps) == (50359, 50360, 50361, 50362)
    assert english.timestamp_begin == 50363
    assert english.sot_sequence == (50257,)  # English-only models get no language or task token
    assert english.sot_sequence_including_notimestamps == (50257, 50362)


def test_multilingual_special_and_language_tokens(multilingual):
    assert (multilingual.eot, multilingual.sot, multilingual.no_timestamps, multilingual.timestamp_begin) == (
        50257,
        50258,
        50363,
        50364,
    )
    assert multilingual.sot_sequence == (50258, multilingual.to_language_token("fr"), 50358)
    assert multilingual.to_language_token("en") == 50259 and multilingual.to_language_token("French") == 50265
    assert len(multilingual.all_language_tokens) == 99 and multilingual.all_language_codes[:3] == ("en", "zh", "de")
    transcribing = multilingual.with_options(language="german", task="transcribe")
    assert transcribing.sot_sequence == (50258, 50261, 50359)


def test_hebrew_is_found_under_its_old_code(english):
    assert english.to_language_token("he") == 50278  # tiny.en's vocabulary spells it <|iw|>


def test_text_round_trips_and_timestamps_are_left_out_or_written(english):
    text = " And so my fellow Americans, ask not."
    tokens = english.encode(text)
    assert english.decode(tokens) == text
    stamped = [english.timestamp_begin, *tokens, english.timestamp_begin + 150]
    assert english.decode(stamped) == text
    assert english.decode_with_timestamps(stamped) == f"<|0.00|>{text}<|3.00|>"


def test_special_token_text_is_kept_when_decoding(english):
    assert english.decode([english.sot, english.no_timestamps]) == "<|startoftranscript|><|notimestamps|>"


def test_non_speech_tokens_match_ctranslate2s_suppression_list(tiny_en_dir, base_dir, english, multilingual):
    for folder, tokenizer in ((tiny_en_dir, english), (base_dir, multilingual)):
        suppress_ids = json.loads((folder / "config.json").read_text())["suppress_ids"]
        assert sorted({*tokenizer.non_speech_tokens, *tokenizer.special_suppressions}) == suppress_ids


def test_words_split_on_spaces_and_punctuation(english):
    tokens = [*english.encode(" Hello, world! It's 3.5 euros"), english.eot]
    words, word_tokens = english.split_to_word_tokens(tokens)
    assert words == [" Hello", ",", " world", "!", " It's", " 3", ".5", " euros", "<|endoftext|>"]
    assert sum(word_tokens, []) == tokens


def test_words_of_unspaced_languages_split_on_whole_characters(multilingual):
    japanese = multilingual.with_options(language="ja", task="transcribe")
    tokens = japanese.encode("こんにちは世界")
    words, word_tokens = japanese.split_to_word_tokens(tokens)
    assert "".join(words) == "こんにちは世界" and all("\ufffd" not in w for w in words)
    assert sum(word_tokens, []) == tokens


def test_language_tables():
    assert len(LANGUAGES) == 100 and list(LANGUAGES)[-1] == "yue"
    assert TO_LANGUAGE_CODE["mandarin"] == "zh" and TO_LANGUAGE_CODE["english"] == "en"


@pytest.mark.realweights
def test_bad_language_and_task_are_refused(english):
    with pytest.raises(ValueError):
        english.with_options(language="klingon")
    with pytest.raises(ValueError):
        english.with_options(task="summarize")


def test_a_folder_without_any_tokenizer_says_how_to_get_one(tmp_path, monkeypatch):
    import importlib.util

    # No rank files anywhere: not in our home, and no installed openai-whisper (the bench extra
    # brings it) or mlx_whisper whose bundled assets the lookup would otherwise find.
    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path / "home"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("whisper", "mlx_whisper") else real_find_spec(name, *a),
    )
    with pytest.raises(ModelNotFound) as raised:
        get_tokenizer(tmp_path)
    assert "tokenizer.json" in raised.value.hint


def test_a_minimal_tokenizer_json_gives_consistent_special_tokens(tmp_path):
    folder = write_tokenizer_json(tmp_path / "tokenizer.json", multilingual=True).parent
    tokenizer = get_tokenizer(folder, multilingual=True, language="de")
    assert tokenizer.sot == tokenizer.eot + 1 and tokenizer.timestamp_begin == tokenizer.no_timestamps + 1
    assert tokenizer.sot_sequence == (tokenizer.sot, tokenizer.to_language_token("de"), tokenizer.transcribe)


def write_rank_file(path, extra_merges: tuple[bytes, ...] = (b"ab", b"abc")):
    import base64

    tokens = [bytes([i]) for i in range(256)] + list(extra_merges)
    path.write_text("".join(f"{base64.b64encode(t).decode()} {rank}\n" for rank, t in enumerate(tokens)))
    return path


def test_tiktoken_rank_files_give_the_special_token_layout(tmp_path):
    pytest.importorskip("tiktoken")
    from mlx_audio_coreml.whisper.tiktoken_files import TiktokenBackend

    tokenizer = Tokenizer(
        TiktokenBackend(write_rank_file(tmp_path / "multilingual.tiktoken"), True, 99), 99, "en", "transcribe"
    )
    assert (tokenizer.eot, tokenizer.sot, tokenizer.to_language_token("en")) == (258, 259, 260)
    assert tokenizer.no_timestamps == 258 + 2 + 99 + 5 and tokenizer.timestamp_begin == tokenizer.no_timestamps + 1
    assert tokenizer.encode("abc") == [257] and tokenizer.decode([257, 100]) == "abcd"
    assert tokenizer.decode_with_timestamps([tokenizer.timestamp_begin + 1500]) == "<|30.00|>"


def test_a_folder_with_only_a_rank_file_loads_its_tokenizer(tmp_path):
    pytest.importorskip("tiktoken")
    write_rank_file(tmp_path / "gpt2.tiktoken")
    tokenizer = get_tokenizer(tmp_path, multilingual=False)
    assert tokenizer.sot_sequence == (259,)  # 258 ranks, then <|endoftext|>, <|startoftranscript|>


@pytest.mark.slow
def test_openai_tiktoken_files_tokenize_like_tokenizer_json(openai_whisper_assets, tiny_en_dir, base_dir):
    pytest.importorskip("tiktoken")
    from mlx_audio_coreml.whisper.tiktoken_files import TiktokenBackend

    text = " And so my fellow Americans, ask not — ça va? 日本語 123,456 's <|endoftext|>"
    for folder, name, multilingual in ((tiny_en_dir, "gpt2", False), (base_dir, "multilingual", True)):
        ranks = Tokenizer(TiktokenBackend(openai_whisper_assets / f"{name}.tiktoken", multilingual, 99))
        json_file = get_tokenizer(folder, multilingual=multilingual)
        assert ranks.encode(text) == json_file.encode(text)
        for member in (
            "eot",
            "sot",
            "transcribe",
            "no_speech",
            "no_timestamps",
            "timestamp_begin",
            "all_language_tokens",
            "non_speech_tokens",
        ):
            assert getattr(ranks, member) == getattr(json_file, member), member


def test_rank_files_of_an_installed_openai_whisper_are_found(tmp_path, monkeypatch):
    # openai-whisper is in the bench extra. importorskip alone is not enough: tests/whisper is on
    # the path as a namespace package when the distribution is absent.
    try:
        importlib.metadata.distribution("openai-whisper")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("openai-whisper is not installed (bench extra)")
    from mlx_audio_coreml.whisper.tiktoken_files import find_tiktoken_file

    monkeypatch.setenv("MLX_AUDIO_COREML_HOME", str(tmp_path / "home"))
    found = find_tiktoken_file(tmp_path, multilingual=False)
    assert found is not None and found.name == "gpt2.tiktoken" and found.parent.name == "assets"
