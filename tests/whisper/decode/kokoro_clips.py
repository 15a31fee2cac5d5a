"""French and Portuguese speech for the translate tests, read by our own Kokoro (real weights).

Whisper base understands neither espeak-ng's French nor its Portuguese (translate_clips.py's
BAD_CLIPS history), but it does understand Kokoro speaking espeak-ng's phonemes for the same text:
our text frontend runs espeak-ng (`fr-fr`, `pt-br`, as hexgrad's pipeline does for its `f` and
`p` voices) and maps the IPA into Kokoro's vocabulary. Only Japanese voices are installed; the
male `jm_kumo` is the one base follows (measured with our base, greedy, 2026-12-06):
  - fr, jm_kumo: detected fr 0.92, "Bonjour, aujourd'hui il fait très beau et nous allons au parc.
    La pémidie nous rendons visite à ma grand-mère qui habite dans une petite maison."
  - pt, jm_kumo: detected pt 1.00, the text word for word;
  - jf_alpha: detected la (0.54 French, 0.78 Portuguese), garbled.
The vocoder's noise is drawn from a fixed seed (vocoders.MLXVocoder), so a clip is the same on
every run. A clip is 24 kHz from Kokoro, written and resampled to 16 kHz by sox as the espeak-ng
clips are, so both engines read the same samples from the file.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

VOICE = "jm_kumo"
LANGUAGES = {"fr": "fr-fr", "pt": "pt-br"}  # Whisper code -> espeak-ng voice of our G2P
_NEEDED = ("config.json", "model.safetensors", f"voices/{VOICE}.npy")


def kokoro_dir() -> Path | None:
    """The installed Kokoro folder with the voice the clips need, or None."""
    from mlx_audio_coreml.config import models_dir

    path = models_dir() / "kokoro"
    return path if all((path / name).is_file() for name in _NEEDED) else None


def kokoro_available() -> bool:
    return kokoro_dir() is not None and shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


@lru_cache(maxsize=1)
def _session() -> Any:
    from mlx_audio_coreml.kokoro.session import KokoroSession
    from mlx_audio_coreml.options import ModelLoadingOptions

    return KokoroSession.from_pretrained(str(kokoro_dir()), ModelLoadingOptions.default(), warmup=False)


def make_kokoro_clip(folder: Path, language: str, text: str) -> Path:
    """`folder/<language>.wav`: `text` read by Kokoro's `VOICE` in `language`, 16 kHz mono."""
    import soundfile

    raw, wav = folder / f"{language}.kokoro.wav", folder / f"{language}.wav"
    if not wav.is_file():
        audio, info = _session().synthesize(text, voice=VOICE, language=LANGUAGES[language])
        soundfile.write(str(raw), audio, info.sample_rate, subtype="FLOAT")
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(wav)], check=True, capture_output=True)
        raw.unlink()
    return wav
