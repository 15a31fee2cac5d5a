"""Whisper's tokenizer: text <-> token ids, plus the special, language and timestamp tokens.

The byte-level BPE comes from a `tokenizer.json` (Hugging Face `tokenizers`) or from the tiktoken
rank files openai-whisper ships (see `tiktoken_files.py`). Special tokens are looked up by name, so
English-only (tiny.en: <|endoftext|> 50256) and multilingual (50257) vocabularies both work.
Timestamp tokens follow <|notimestamps|>: token `timestamp_begin + i` means i * 0.02 s.
"""

from __future__ import annotations

import string
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from ..errors import CorruptModelFile, ModelNotFound
from .languages import LANGUAGES, TO_LANGUAGE_CODE, UNSEGMENTED_LANGUAGES

__all__ = ["LANGUAGES", "TO_LANGUAGE_CODE", "Tokenizer", "TokenizerBackend", "get_tokenizer", "load_backend"]

TIME_PRECISION = 0.02  # seconds per timestamp token
_OLD_LANGUAGE_CODES = {"he": "iw"}  # some vocabularies still spell Hebrew's token <|iw|>


class TokenizerBackend(Protocol):
    """The BPE itself: both implementations decode partial UTF-8 to U+FFFD."""

    def encode(self, text: str) -> list[int]: ...
    def decode(self, ids: list[int]) -> str: ...
    def token_to_id(self, token: str) -> int | None: ...


class HFTokenizerBackend:
    """A `tokenizer.json` through the `tokenizers` library."""

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer as HFTokenizer

        self.path = Path(path)
        try:
            self._tokenizer = HFTokenizer.from_file(str(path))
        except Exception as exc:  # noqa: BLE001  (tokenizers raises a bare Exception for bad JSON)
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptModelFile(
                str(path), f"not a readable tokenizer.json ({first}); copy it again from the model's repository"
            ) from exc

    def encode(self, text: str) -> list[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids  # no <|startoftranscript|> template

    def decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False)

    def token_to_id(self, token: str) -> int | None:
        return self._tokenizer.token_to_id(token)


def load_backend(model_dir: Path, multilingual: bool, num_languages: int = 99) -> TokenizerBackend:
    """The tokenizer for the model in `model_dir`: its tokenizer.json, else the tiktoken files."""
    path = Path(model_dir) / "tokenizer.json"
    if path.is_file():
        return HFTokenizerBackend(path)
    from .tiktoken_files import TiktokenBackend, find_tiktoken_file

    rank_file = find_tiktoken_file(model_dir, multilingual)
    if rank_file is not None:
        return TiktokenBackend(rank_file, multilingual, num_languages)
    raise ModelNotFound(
        f"{model_dir}/tokenizer.json",
        "The model folder has no tokenizer.json and no tiktoken file was found. Copy tokenizer.json "
        "from the matching openai/whisper-* repository into the folder, or put "
        f"{'multilingual' if multilingual else 'gpt2'}.tiktoken (from the openai-whisper sdist, whisper/assets/) "
        "in the folder or in $MLX_AUDIO_COREML_HOME/assets.",
    )


class Tokenizer:
    """Token ids and their meaning for one model, language and task (openai-whisper's members)."""

    def __init__(
        self, backend: TokenizerBackend, num_languages: int = 99, language: str | None = None, task: str | None = None
    ) -> None:
        self.backend = backend
        self.num_languages = num_languages
        self.language = _language_code(language) if language else None
        if task not in (None, "transcribe", "translate"):
            raise ValueError(f"task must be 'transcribe' or 'translate', not {task!r}")
        self.task = task
        self.eot = self._special("<|endoftext|>")
        self.sot = self._special("<|startoftranscript|>")
        self.translate = self._special("<|translate|>")
        self.transcribe = self._special("<|transcribe|>")
        self.sot_lm = self._special("<|startoflm|>")
        self.sot_prev = self._special("<|startofprev|>")
        self.no_speech = self._special("<|nospeech|>", "<|nocaptions|>")
        self.no_timestamps = self._special("<|notimestamps|>")
        first_timestamp = backend.token_to_id("<|0.00|>")
        self.timestamp_begin = first_timestamp if first_timestamp is not None else self.no_timestamps + 1

    def _special(self, *names: str) -> int:
        for name in names:
            token = self.backend.token_to_id(name)
            if token is not None:
                return token
        raise KeyError(f"the tokenizer has no {' or '.join(names)} token")

    def with_options(self, language: str | None = None, task: str | None = None) -> Tokenizer:
        """The same vocabulary for another language or task (shares the loaded BPE)."""
        return Tokenizer(self.backend, self.num_languages, language, task)

    # --- text ----------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text)

    def decode(self, tokens: Any) -> str:
        """Text of `tokens`, timestamp tokens left out."""
        return self.backend.decode([int(t) for t in tokens if int(t) < self.timestamp_begin])

    def decode_with_timestamps(self, tokens: Any) -> str:
        """Text of `tokens` with each timestamp token written as <|1.08|>."""
        pieces: list[str] = []
        run: list[int] = []
        for token in (int(t) for t in tokens):
            if token >= self.timestamp_begin:
                pieces.append(self.backend.decode(run))
                pieces.append(f"<|{(token - self.timestamp_begin) * TIME_PRECISION:.2f}|>")
                run = []
            else:
                run.append(token)
        pieces.append(self.backend.decode(run))
        return "".join(pieces)

    # --- languages and prompts -----------------------------------------------------------------
    def _language_id(self, code: str) -> int | None:
        token = self.backend.token_to_id(f"<|{code}|>")
        if token is None and code in _OLD_LANGUAGE_CODES:
            token = self.backend.token_to_id(f"<|{_OLD_LANGUAGE_CODES[code]}|>")
        return token

    @cached_property
    def all_language_codes(self) -> tuple[str, ...]:
        return tuple(code for code in list(LANGUAGES)[: self.num_languages] if self._language_id(code) is not None)

    @cached_property
    def all_language_tokens(self) -> tuple[int, ...]:
        return tuple(self._language_id(code) for code in self.all_language_codes)  # type: ignore[misc]

    def to_language_token(self, language: str) -> int:
        token = self._language_id(_language_code(language))
        if token is None:
            raise KeyError(f"language {language!r} has no token in this vocabulary")
        return token

    @property
    def special_suppressions(self) -> tuple[int, ...]:
        """Special tokens never sampled as text: openai-whisper adds these to the non-speech set."""
        return (self.transcribe, self.translate, self.sot, self.sot_prev, self.sot_lm, self.no_speech)

    @property
    def language_token(self) -> int:
        if self.language is None:
            raise ValueError("this tokenizer has no language set")
        return self.to_language_token(self.language)

    @cached_property
    def sot_sequence(self) -> tuple[int, ...]:
        sequence = [self.sot]
        if self.language is not None:
            sequence.append(self.language_token)
        if self.task is not None:
            sequence.append(self.transcribe if self.task == "transcribe" else self.translate)
        return tuple(sequence)

    @property
    def sot_sequence_including_notimestamps(self) -> tuple[int, ...]:
        return self.sot_sequence + (self.no_timestamps,)

    @cached_property
    def non_speech_tokens(self) -> tuple[int, ...]:
        """Tokens for symbols that are never speech (suppressed so the model does not caption noise)."""
        symbols = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』')
        symbols += "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪".split()
        musical = set("♩♪♫♬♭♮♯")  # always suppress their first byte token: they never start a word
        result = {self.encode(" -")[0], self.encode(" '")[0]}
        for symbol in symbols + sorted(musical):
            for tokens in (self.encode(symbol), self.encode(" " + symbol)):
                if len(tokens) == 1 or symbol in musical:
                    result.add(tokens[0])
        return tuple(sorted(result))

    # --- words (for word timestamps) -----------------------------------------------------------
    def split_to_word_tokens(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        if self.language in UNSEGMENTED_LANGUAGES:
            return self.split_tokens_on_unicode(tokens)
        return self.split_tokens_on_spaces(tokens)

    def split_tokens_on_unicode(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Group tokens into the shortest runs that decode to whole characters."""
        full_text = self.decode_with_timestamps(tokens)
        words: list[str] = []
        word_tokens: list[list[int]] = []
        current: list[int] = []
        position = 0
        for token in tokens:
            current.append(token)
            text = self.decode_with_timestamps(current)
            complete = "\ufffd" not in text or full_text[position + text.index("\ufffd")] == "\ufffd"
            if complete:
                words.append(text)
                word_tokens.append(current)
                current = []
                position += len(text)
        return words, word_tokens

    def split_tokens_on_spaces(self, tokens: list[int]) -> tuple[list[str], list[list[int]]]:
        """Words start at a leading space, a special token or a punctuation mark."""
        subwords, subword_tokens = self.split_tokens_on_unicode(tokens)
        words: list[str] = []
        word_tokens: list[list[int]] = []
        for subword, pieces in zip(subwords, subword_tokens):
            special = pieces[0] >= self.eot
            starts_word = subword.startswith(" ")
            punctuation = subword.strip() in string.punctuation
            if special or starts_word or punctuation or not words:
                words.append(subword)
                word_tokens.append(list(pieces))
            else:
                words[-1] += subword
                word_tokens[-1].extend(pieces)
        return words, word_tokens


def _language_code(language: str) -> str:
    key = language.lower()
    if key in LANGUAGES:
        return key
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    raise ValueError(f"unsupported language {language!r}")


def get_tokenizer(
    source: Any,
    *,
    multilingual: bool | None = None,
    num_languages: int | None = None,
    language: str | None = None,
    task: str | None = None,
) -> Tokenizer:
    """A Tokenizer from a model folder, a WhisperBundle, a Tokenizer or a backend.

    English-only models get no language or task tokens in the prompt (openai-whisper's rule);
    multilingual ones default to the task "transcribe" and the language given (None: detect).
    """
    if isinstance(source, Tokenizer):
        backend, default_languages, default_multilingual = source.backend, source.num_languages, None
    elif hasattr(source, "model") and hasattr(source, "tokenizer"):  # a WhisperBundle
        backend = source.tokenizer.backend
        default_languages, default_multilingual = source.model.num_languages, source.model.is_multilingual
    elif isinstance(source, (str, Path)):
        multilingual = True if multilingual is None else multilingual
        default_languages, default_multilingual = num_languages or 99, multilingual
        backend = load_backend(Path(source), multilingual, default_languages)
    else:
        backend, default_languages, default_multilingual = source, 99, None
    if multilingual is None:
        multilingual = default_multilingual if default_multilingual is not None else True
    if not multilingual:
        return Tokenizer(backend, num_languages or default_languages, None, None)
    return Tokenizer(backend, num_languages or default_languages, language, task or "transcribe")
