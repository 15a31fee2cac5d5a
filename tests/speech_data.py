"""Real speech and real weights shared by every test area (tests/ is on sys.path: pyproject.toml).

samples/jfk.wav is committed; the LibriVox clips come from Debian's pocketsphinx-testdata and the
weights from scripts/fetch_models.sh, both installed by scripts/setup.sh.
"""

from __future__ import annotations

import re
from pathlib import Path

from mlx_audio_coreml.whisper.model_names import local_store

REPO = Path(__file__).resolve().parents[1]
JFK = REPO / "samples" / "jfk.wav"
JFK_TEXT = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def real_model_dir(name: str) -> Path | None:
    """The installed real weights for `name` (CTranslate2 format with its tokenizer), or None."""
    path = local_store() / name
    return path if (path / "model.bin").is_file() and (path / "tokenizer.json").is_file() else None


def librivox_clips() -> list[tuple[Path, str]]:
    """(wav, reference text) for each clip listed in pocketsphinx-testdata's `transcription` file."""
    listing = LIBRIVOX / "transcription"
    if not listing.is_file():
        return []
    clips = []
    for line in listing.read_text().splitlines():
        match = re.fullmatch(r"<s> (.*) </s> \((\S+)\)", line.strip())
        if match and (LIBRIVOX / f"{match.group(2)}.wav").is_file():
            clips.append((LIBRIVOX / f"{match.group(2)}.wav", match.group(1)))
    return clips


def real_kokoro_dir() -> Path | None:
    """The Kokoro folder installed by `scripts/fetch_models.sh kokoro` (int8 graph included), or None."""
    from mlx_audio_coreml.config import models_dir

    path = models_dir() / "kokoro"
    needed = ("model.safetensors", "config.json", "kokoro-v1.0.int8.onnx", "voices/jf_alpha.npy")
    return path if all((path / name).is_file() for name in needed) else None


KOKORO_MISSING = "real Kokoro weights not installed: run `bash scripts/fetch_models.sh kokoro`"


def text_similarity(reference: str, hypothesis: str) -> float:
    """Share of matching words, case and punctuation aside (difflib's ratio): 1.0 is the same text."""
    import difflib

    def words(text: str) -> list[str]:
        return re.sub(r"[^\w\s']", " ", text.lower()).split()

    return difflib.SequenceMatcher(None, words(reference), words(hypothesis)).ratio()
