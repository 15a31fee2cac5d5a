"""Speech in five languages for the translate tests: one short story per language, read by
espeak-ng (Spanish, German, Italian: robotic, but Whisper base follows them) or by our Kokoro
(French and Portuguese, which base does not understand from espeak-ng: kokoro_clips.py),
resampled to 16 kHz with sox; and how close two English translations are (shared content words).

    .venv/bin/python tests/whisper/decode/translation_clips.py [es fr ...]   # prints ours vs faster-whisper
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from kokoro_clips import LANGUAGES as KOKORO_LANGUAGES
from kokoro_clips import kokoro_available, make_kokoro_clip

# The same little story in each language: a morning, the weather, a park and a visit.
SENTENCES = {
    "es": "Buenos días. Hoy hace muy buen tiempo y vamos al parque. Por la tarde visitamos a mi abuela, que vive en una casa pequeña.",
    "fr": "Bonjour. Aujourd'hui il fait très beau et nous allons au parc. L'après-midi nous rendons visite à ma grand-mère, qui habite dans une petite maison.",
    "de": "Guten Morgen. Das Wetter ist heute sehr schön und wir gehen in den Park. Am Nachmittag besuchen wir meine Großmutter, die in einem kleinen Haus wohnt.",
    "it": "Buongiorno. Oggi il tempo è molto bello e andiamo al parco. Nel pomeriggio andiamo a trovare mia nonna, che abita in una piccola casa.",
    "pt": "Bom dia. Hoje o tempo está muito bom e vamos ao parque. À tarde visitamos a minha avó, que mora numa casa pequena.",
}

STOP_WORDS = frozenset(
    "a an the and or but so of to in on at for with from by as is are was were be been am it its it's this that"
    " these those i me my we our us you your he him his she her they them their there here who which what when"
    " do does did have has had will would can could not no very".split()
)


def tools_available() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def speaker_missing(language: str) -> str | None:
    """Why `language`'s clip cannot be made here, or None when it can."""
    if not tools_available():
        return "espeak-ng and sox are needed to make the clips"
    if language in KOKORO_LANGUAGES and not kokoro_available():
        return "real Kokoro weights with the jm_kumo voice are needed (scripts/fetch_models.sh kokoro)"
    return None


def make_clip(folder: Path, language: str) -> Path:
    """A 16 kHz mono clip of SENTENCES[language]: Kokoro's for French and Portuguese, else espeak-ng's."""
    if language in KOKORO_LANGUAGES:
        return make_kokoro_clip(folder, language, SENTENCES[language])
    return make_espeak_clip(folder, language)


def make_espeak_clip(folder: Path, language: str) -> Path:
    """`folder/<language>.espeak.wav`: SENTENCES[language] read by espeak-ng, 16 kHz mono. The
    parity tests keep espeak-ng's French: base loops on it to the window's length limit in both
    engines, a case worth comparing step by step."""
    raw, wav = folder / f"{language}.raw.wav", folder / f"{language}.espeak.wav"
    if not wav.is_file():
        subprocess.run(
            ["espeak-ng", "-v", language, "-s", "140", "-w", str(raw), SENTENCES[language]],
            check=True,
            capture_output=True,
        )
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", str(wav)], check=True, capture_output=True)
        raw.unlink()
    return wav


def content_words(text: str) -> set[str]:
    words = re.sub(r"[^\w\s']", " ", text.lower()).split()
    return {w for w in words if w not in STOP_WORDS}


def content_overlap(ours: str, reference: str) -> float:
    """Share of the reference's content words that ours has too (1.0 when the reference has none)."""
    wanted = content_words(reference)
    return len(wanted & content_words(ours)) / len(wanted) if wanted else 1.0


def main() -> int:
    """Translate each clip with our defaults and faster-whisper's (base, float32) and print both."""
    import sys
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import mlx_audio_coreml  # noqa: F401  (OpenBLAS before mlx.core)

    # isort: split
    import mlx.core as mx
    from faster_whisper import WhisperModel

    from mlx_audio_coreml.encoders import MLXAudioEncoder
    from mlx_audio_coreml.whisper.decoding import compression_ratio
    from mlx_audio_coreml.whisper.loading import load_whisper
    from mlx_audio_coreml.whisper.model_names import local_store
    from mlx_audio_coreml.whisper.transcribe import Transcriber

    path = local_store() / "base"
    bundle = load_whisper(path, dtype=mx.float32)
    ours = Transcriber(bundle, MLXAudioEncoder(bundle.model.encoder, bundle.dims.n_mels))
    peer = WhisperModel(str(path), device="cpu", compute_type="float32", cpu_threads=2)
    folder = Path(tempfile.mkdtemp())
    for language in sys.argv[1:] or list(SENTENCES):
        clip = str(make_clip(folder, language))
        segments, _ = ours.transcribe(clip, task="translate")
        mine = "".join(s.text for s in segments).strip()
        segments, _ = peer.transcribe(clip, task="translate")
        theirs = "".join(s.text for s in segments).strip()
        print(
            f"{language}  overlap {content_overlap(mine, theirs):.2f}  ratio {compression_ratio(mine):.2f}\n  ours: {mine}\n  peer: {theirs}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
