"""Kokoro text to speech: its config, its weights and its inputs (each Kokoro helper appends its own classes)."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import MlxAudioCoreMLError
from .models import WeightsMismatch


class KokoroError(MlxAudioCoreMLError):
    """Base of every Kokoro-specific error."""


class KokoroConfigError(KokoroError):
    """config.json cannot describe a Kokoro model: `missing` names the absent keys."""

    def __init__(self, missing: Sequence[str], detail: str = "") -> None:
        self.missing = list(missing)
        self.detail = detail
        extra = f"{detail}: " if detail else ""
        super().__init__(f"invalid Kokoro config: {extra}missing {self.missing}")


class KokoroStateMismatch(KokoroError, WeightsMismatch):
    """A canonical Kokoro state does not match the model: every missing, unexpected and misshapen key."""


class KokoroInputError(KokoroError):
    """Token ids or a style the model cannot take; `what` names the input, `expected` and `got` say why."""

    def __init__(self, what: str, expected: str, got: str) -> None:
        self.what = what
        self.expected = expected
        self.got = got
        super().__init__(f"bad Kokoro {what}: expected {expected}, got {got}")


class KokoroTextError(KokoroError):
    """The text frontend could not turn the input into Kokoro's phoneme tokens."""


class EmptyText(KokoroTextError):
    """Nothing to speak: the text (or phoneme string) is empty, blank or punctuation only."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(f"nothing to speak in {text[:80]!r}: the input is empty or punctuation only")


class UnknownPhoneme(KokoroTextError):
    """Phonemes outside Kokoro's vocabulary: `phonemes` lists each distinct one, in order of appearance."""

    def __init__(self, phonemes: Sequence[str], source: str) -> None:
        self.phonemes = list(phonemes)
        self.source = source
        names = ", ".join(f"{p!r} (U+{ord(p):04X})" for p in self.phonemes)
        super().__init__(f"phonemes outside Kokoro's vocabulary: {names} in {source[:80]!r}")


class WordTooLong(KokoroTextError):
    """One word alone needs more tokens than one Kokoro call takes; it is never cut."""

    def __init__(self, word: str, tokens: int, limit: int) -> None:
        self.word = word
        self.tokens = tokens
        self.limit = limit
        super().__init__(f"the word {word[:60]!r} needs {tokens} phoneme tokens; one chunk takes at most {limit}")


class PhonemizerUnavailable(KokoroTextError):
    """No grapheme-to-phoneme engine could run (espeak-ng neither as a library nor as a program)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"no phonemizer available: {reason}. Install espeak-ng (Debian: apt-get install espeak-ng)")


class UnsupportedLanguage(KokoroTextError):
    """espeak-ng has no voice for this language code."""

    def __init__(self, language: str) -> None:
        self.language = language
        super().__init__(f"espeak-ng has no voice for language {language!r} (try en-us, en-gb, fr, de, es, ...)")


class KokoroWeightsError(KokoroError):
    """Kokoro weights that cannot be read: `path` is the file or folder, `reason` says what is wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read Kokoro weights from {self.path}: {reason}")


class UnsupportedKokoroFormat(KokoroWeightsError):
    """A folder holding none of the Kokoro weight formats we read; `found` lists its files."""

    def __init__(self, path: str, found: Sequence[str]) -> None:
        self.found = list(found)
        super().__init__(
            path,
            f"no Kokoro weights found (files: {self.found}); expected model.safetensors + config.json (ours or "
            "mlx-audio's), kokoro-v1_0.pth + config.json (hexgrad) or kokoro-v1.0.onnx + voices-v1.0.bin (kokoro-onnx)",
        )


class UnsafePickle(KokoroWeightsError):
    """A .pth checkpoint asks the unpickler for something other than tensors: `name` is what it asked for."""

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        super().__init__(path, f"the pickle references {name!r}, which a tensor checkpoint never needs; refused")


class KokoroGraphError(KokoroError):
    """An ONNX graph does not have the shape of a Kokoro export where weights were expected: `node` says where."""

    def __init__(self, node: str, reason: str) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"unexpected Kokoro ONNX graph at {node!r}: {reason}")


class UnknownVoice(KokoroError):
    """A voice name the library does not have; `known` lists the voices it has."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown voice {name!r}; known voices: {', '.join(self.known) or '(none)'}")


class InvalidVoiceSpec(KokoroError):
    """A voice blend that cannot be read ("a:0.7,b:0.3" or "a,b"): `spec` is the text, `reason` why."""

    def __init__(self, spec: str, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"invalid voice spec {spec!r}: {reason}")


class SpeedOutOfRange(KokoroInputError):
    """A speaking speed outside what Kokoro sounds right at (`minimum`..`maximum`, 1.0 = as trained)."""

    def __init__(self, speed: float, minimum: float, maximum: float) -> None:
        super().__init__("speed", f"{minimum}..{maximum} (1.0 is Kokoro's natural pace)", repr(speed))
        self.speed = speed
        self.minimum = minimum
        self.maximum = maximum
