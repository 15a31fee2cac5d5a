"""espeak-ng as a phonemizer: tied IPA for a run of words, through its library or its program.

Two ways to reach espeak-ng, measured here (espeak-ng 1.51, Debian, 2 cores shared by other jobs):
  - the library through ctypes (`espeak_TextToPhonemes`): 0.14 ms for an 18-word sentence (mean
    of 200 calls), after a one-time 5.6 ms initialization and 6.9 ms voice load;
  - the program (`espeak-ng -q --ipa --tie=^ -v en-us TEXT`): 18.3 ms for the same sentence (mean
    of 20 runs), because every call starts a process and loads the voice data again.
Through the whole frontend (a sentence is one espeak call per run of words between punctuation
marks), a 24-sentence paragraph took 2.0 ms per sentence with the library and 149 ms with the
program (median of 5 vs one run, load average ~16 at the time).
The library is the default: two orders of magnitude cheaper, which matters when a long text is
chunked (every word-level split re-phonemizes), and it needs no subprocess. The program is the fallback
where libespeak-ng cannot be loaded but the `espeak-ng` binary exists; both give the same output
(a test checks it). espeak keeps global state (one voice at a time), so library calls are
serialized by one process-wide lock. Neither way returns punctuation: callers pass runs of words
and put the punctuation back themselves (see g2p.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import shutil
import subprocess
import threading
from typing import Protocol

from ...errors import PhonemizerUnavailable, UnsupportedLanguage

_IPA = 0x02  # phonememode bit 1: IPA as UTF-8
_USE_TIE = 0x80  # phonememode bit 7: bits 8-23 hold a tie character
_PHONEME_MODE = _IPA | _USE_TIE | (ord("^") << 8)
_CHARS_UTF8 = 1
_OUTPUT_SYNCHRONOUS = 2
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: report errors instead of exiting the process


class EspeakEngine(Protocol):
    """Tied IPA (`^` between the parts of one phoneme) for `text` in an espeak voice."""

    name: str

    def ipa(self, text: str, language: str) -> str: ...


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class EspeakLibrary:
    """libespeak-ng through ctypes (normally one instance: `default_engine()`)."""

    name = "espeak-ng library"
    # espeak's state is process-wide: one lock, and one record of the selected voice, for all instances.
    _lock = threading.Lock()
    _voice: str | None = None

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        with self._lock:
            if lib.espeak_Initialize(_OUTPUT_SYNCHRONOUS, 0, None, _DONT_EXIT) < 0:
                raise PhonemizerUnavailable(f"espeak_Initialize failed for {path} (espeak-ng-data missing?)")
            EspeakLibrary._voice = None
        self._lib = lib

    def _select(self, language: str) -> None:
        if language == EspeakLibrary._voice:
            return
        # Voice files are named by region ("en-us"), but British English is the file "en":
        # fall back to a search by language, as the espeak-ng program does for -v.
        if self._lib.espeak_SetVoiceByName(language.encode()) != 0:
            spec = _Voice(languages=language.encode())
            if self._lib.espeak_SetVoiceByProperties(ctypes.byref(spec)) != 0:
                EspeakLibrary._voice = None
                raise UnsupportedLanguage(language)
        EspeakLibrary._voice = language

    def ipa(self, text: str, language: str) -> str:
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        cursor = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses: list[str] = []
        with self._lock:
            self._select(language)
            # Each call returns one clause and advances the cursor; NULL means the end.
            while cursor.value:
                out = self._lib.espeak_TextToPhonemes(ctypes.byref(cursor), _CHARS_UTF8, _PHONEME_MODE)
                if out:
                    clauses.append(out.decode("utf-8").strip())
        return " ".join(c for c in clauses if c)


class EspeakProgram:
    """The `espeak-ng` program, one process per call."""

    name = "espeak-ng program"

    def __init__(self, path: str) -> None:
        self.path = path

    def ipa(self, text: str, language: str) -> str:
        args = [self.path, "-q", "--ipa", "--tie=^", "-v", language, "--", text]
        done = subprocess.run(args, capture_output=True, timeout=60, check=False)
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()
            if "voice" in err.lower():
                raise UnsupportedLanguage(language)
            raise PhonemizerUnavailable(f"{self.path} exited with {done.returncode}: {err}")
        # One line per clause, like the library's one result per call.
        return " ".join(line.strip() for line in done.stdout.decode("utf-8").splitlines() if line.strip())


_engine: EspeakEngine | None = None
_engine_lock = threading.Lock()


def find_library() -> str | None:
    return ctypes.util.find_library("espeak-ng") or _first_loadable(("libespeak-ng.so.1", "libespeak-ng.dylib"))


def _first_loadable(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return name
    return None


def default_engine() -> EspeakEngine:
    """The library when it loads, else the program; `PhonemizerUnavailable` when neither exists."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _open_engine()
        return _engine


def _open_engine() -> EspeakEngine:
    reasons = []
    path = find_library()
    if path is not None:
        try:
            return EspeakLibrary(path)
        except (OSError, AttributeError, PhonemizerUnavailable) as exc:
            reasons.append(f"library {path}: {exc}")
    else:
        reasons.append("libespeak-ng not found")
    program = shutil.which("espeak-ng")
    if program is not None:
        return EspeakProgram(program)
    reasons.append("no espeak-ng program on PATH")
    raise PhonemizerUnavailable("; ".join(reasons))
