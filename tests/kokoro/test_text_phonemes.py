"""espeak-ng's IPA mapped into Kokoro's symbols: the rules on fixed IPA, then real espeak-ng on known words."""

from __future__ import annotations

import shutil

import pytest
from text_support import VOCAB, needs_espeak

from mlx_audio_coreml.errors import UnsupportedLanguage
from mlx_audio_coreml.kokoro.text.espeak import (
    EspeakLibrary,
    EspeakProgram,
    default_engine,
    find_library,
)
from mlx_audio_coreml.kokoro.text.g2p import EspeakG2P, resolve_language
from mlx_audio_coreml.kokoro.text.ipa import to_kokoro
from mlx_audio_coreml.kokoro.text.vocab import unknown_phonemes


@pytest.mark.parametrize(
    ("ipa", "language", "expected"),
    [
        # misaki's own documented example (EN_PHONES.md): a tied t^ʃ is one phoneme, t + ʃ two.
        ("mˈɜːt^ʃəntʃˌɪp", "en-us", "mˈɜɹʧəntʃˌɪp"),
        ("mˈɜːt^ʃəntʃˌɪp", "en-gb", "mˈɜːʧəntʃˌɪp"),
        ("lˈe^ɪzi bɹˈa^ʊn bˈɔ^ɪ hˈa^ɪ", "en-us", "lˈAzi bɹˈWn bˈY hˈI"),
        ("d^ʒˈʌd^ʒ", "en-us", "ʤˈʌʤ"),
        ("ɡˈo^ʊ", "en-us", "ɡˈO"),
        ("ɡˈə^ʊ", "en-gb", "ɡˈQ"),
        ("hˈe^ə", "en-gb", "hˈɛː"),
        ("nˈi^ə", "en-gb", "nˈɪə"),
        ("bˈʌɾɚ", "en-us", "bˈʌTəɹ"),  # flap -> T, r-colored schwa -> əɹ
        ("bˈʌʔn̩", "en-us", "bˈʌtᵊn"),  # glottal stop + syllabic n
        ("lˈɪɾə^l", "en-us", "lˈɪTᵊl"),
        ("ɐbˈa^ʊt", "en-us", "əbˈWt"),
        ("bˈɝd", "en-us", "bˈɜɹd"),
        ("bˈɜːd", "en-us", "bˈɜɹd"),
        ("fˈɑːðə", "en-gb", "fˈɑːðə"),  # British keeps length marks
        ("fˈɑːðɚ", "en-us", "fˈɑðəɹ"),  # American drops them
        ("ˈɛvɹi(^e^n)", "en-us", "ˈɛvɹi"),  # language-switch flag removed
        ("bɔ̃ʒˈuʁ", "fr", "bɔ̃ʒˈuʁ"),  # the nasal tilde has a token outside English
        ("t^sˈa^ɪt", "de", "ʦˈIt"),
        ("s.ˈi.5", "cmn", "sˈi"),  # syllable dots and tone numbers have no token
    ],
)
def test_espeak_ipa_maps_to_kokoro_symbols(ipa: str, language: str, expected: str) -> None:
    assert to_kokoro(ipa, language) == expected


@needs_espeak
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", "həlˈO"),
        ("world", "wˈɜɹld"),
        ("merchant", "mˈɜɹʧənt"),
        ("judge", "ʤˈʌʤ"),
        ("church", "ʧˈɜɹʧ"),
        ("high", "hˈI"),
        ("how", "hˈW"),
        ("soy", "sˈY"),
        ("hey", "hˈA"),
        ("butter", "bˈʌTəɹ"),
        ("button", "bˈʌtᵊn"),
        ("boxes", "bˈɑksᵻz"),
        ("thing", "θˈɪŋ"),
        ("Hello, world!", "həlˈO, wˈɜɹld!"),
        (
            "The quick brown fox jumps over the lazy dog.",
            "ðə kwˈɪk bɹˈWn fˈɑks ʤˈʌmps ˌOvəɹ ðə lˈAzi dˈɑɡ.",
        ),
        ('"Really?" she asked.', '"ɹˈiəli?" ʃi ˈæskt.'),
        ("Dr. Who (twice)", "dˈɑktəɹ hˈu (twˈIs)"),
    ],
)
def test_american_english_words_get_hand_checked_phonemes(text: str, expected: str) -> None:
    assert EspeakG2P("en-us")(text) == expected


@needs_espeak
@pytest.mark.parametrize(
    ("text", "expected"),
    [("go", "ɡˈQ"), ("hair", "hˈɛː"), ("hot", "hˈɒt"), ("father", "fˈɑːðə"), ("church", "ʧˈɜːʧ")],
)
def test_british_english_words_get_hand_checked_phonemes(text: str, expected: str) -> None:
    assert EspeakG2P("en-gb")(text) == expected


@needs_espeak
@pytest.mark.parametrize("language", ["en-us", "en-gb", "fr", "de", "es", "it", "pt-br", "hi"])
def test_every_symbol_of_a_sentence_is_in_kokoros_vocabulary(language: str) -> None:
    text = {
        "en-us": "Yesterday, the thirty-three choirs sang beautifully; nobody expected it!",
        "en-gb": "Yesterday, the thirty-three choirs sang beautifully; nobody expected it!",
        "fr": "Bonjour, je m'appelle Jean. Un bon vin blanc.",
        "de": "Guten Tag, ich heiße Jürgen und wohne in München.",
        "es": "Hola, ¿cómo estás? Me llamo José.",
        "it": "Buongiorno a tutti, come state?",
        "pt-br": "Olá, tudo bem? Não sei.",
        "hi": "नमस्ते दुनिया",
    }[language]
    phonemes = EspeakG2P(language)(text)
    assert phonemes and unknown_phonemes(phonemes, VOCAB) == []


def test_kokoro_language_letters_are_aliases() -> None:
    assert resolve_language("a") == "en-us" and resolve_language("b") == "en-gb"
    assert resolve_language(None) == "en-us" and resolve_language("EN_US") == "en-us"


@needs_espeak
def test_library_and_program_give_the_same_phonemes() -> None:
    library = find_library()
    if library is None:
        pytest.skip("libespeak-ng is not installed")
    text = "The quick brown fox, which was 3.5 years old, jumped over 1,000 lazy dogs. Didn't it?"
    for language in ("en-us", "en-gb", "fr"):
        program = EspeakProgram(shutil.which("espeak-ng"))
        assert EspeakLibrary(library).ipa(text, language) == program.ipa(text, language)


@needs_espeak
def test_unknown_language_is_a_typed_error_naming_it() -> None:
    with pytest.raises(UnsupportedLanguage) as caught:
        EspeakG2P("xx-notalanguage")("hello")
    assert caught.value.language == "xx-notalanguage"
    program = EspeakProgram(shutil.which("espeak-ng"))
    with pytest.raises(UnsupportedLanguage):
        program.ipa("hello", "xx-notalanguage")


@needs_espeak
def test_default_engine_is_the_library_when_it_loads() -> None:
    if find_library() is None:
        pytest.skip("libespeak-ng is not installed")
    assert isinstance(default_engine(), EspeakLibrary)
