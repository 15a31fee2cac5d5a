"""Translation on real weights (base): the same clip gives the same English on every run, and
speech in five languages becomes English that neither loops nor strays far from faster-whisper's
translation of the same clip on the same weights."""

from __future__ import annotations

import pytest
from translation_clips import SENTENCES, content_overlap, make_clip, tools_available

from mlx_audio_coreml.whisper.decoding import compression_ratio

pytestmark = pytest.mark.realweights

# Shared content words with faster-whisper's translation (tests/whisper/decode/translation_clips.py,
# both engines at their defaults, base float32): es, de, it 1.00 (the same text), measured in
# commit 52b1c2c; on 2026-12-06 es, de, it passed again at this bound. Two clips are bad fixtures,
# not decoder faults (both engines fail the same way; our tokens match CTranslate2's at temperature
# 0 on them: test_decode_parity.py), and stay strict xfails until real speech replaces them:
MIN_OVERLAP = 0.8
BAD_CLIPS = {
    # base garbles every espeak-ng French clip tried (voices fr, fr-be, fr-ch, fr+f3; 120-150 words
    # a minute; word gaps; three texts): "Aujourd'hui" -> "j'oublier", "maison" -> "mémoire". On
    # this one both engines' beam-5 translation loops ("Yes, yes, ..."), so each keeps its own
    # samples (overlap 0.00); on the clearest (fr-ch) both keep "Yes, I am. In Fébo Joublier. ...".
    "fr": "espeak-ng French is not understood by base in either engine (see the comment above)",
    # Detected as Latin (la 0.27, pt not in the top 3) by our engine and by CTranslate2 on its own
    # features; voices pt and pt-br, 120-160 words a minute and a second text gave la, en or hu.
    "pt": "espeak-ng Portuguese is detected as Latin by both engines (see the comment above)",
}
LOOP_RATIO = 2.4  # the fallback's compression-ratio threshold: above it text loops


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    if not tools_available():
        pytest.skip("espeak-ng and sox are needed to make the clips")
    folder = tmp_path_factory.mktemp("translate")
    return {language: str(make_clip(folder, language)) for language in SENTENCES}


@pytest.fixture(scope="module")
def peer():
    faster_whisper = pytest.importorskip("faster_whisper")
    from speech_data import real_model_dir

    path = real_model_dir("base")
    if path is None:
        pytest.skip("base weights not installed (scripts/fetch_models.sh base)")
    return faster_whisper.WhisperModel(str(path), device="cpu", compute_type="float32", cpu_threads=2)


def translate(transcriber, audio, **options):
    segments, info = transcriber.transcribe(audio, task="translate", **options)
    return "".join(s.text for s in segments).strip(), info


def test_a_sampled_rung_translates_the_same_way_twice(base_transcriber, clips):
    """The fallback's sampling is seeded: two runs of a hot rung give the same text."""
    first, _ = translate(base_transcriber, clips["de"], temperature=0.6, best_of=2, language="de")
    second, _ = translate(base_transcriber, clips["de"], temperature=0.6, best_of=2, language="de")
    assert first and first == second


@pytest.mark.slow
def test_the_same_clip_translated_five_times_gives_the_same_text(base_transcriber, clips):
    texts = {translate(base_transcriber, clips["de"])[0] for _ in range(5)}
    assert len(texts) == 1 and next(iter(texts))


@pytest.mark.slow
@pytest.mark.parametrize(
    "language",
    [
        pytest.param(lang, marks=pytest.mark.xfail(reason=BAD_CLIPS[lang], strict=True)) if lang in BAD_CLIPS else lang
        for lang in SENTENCES
    ],
)
def test_translation_is_english_without_loops_and_close_to_faster_whisper(base_transcriber, peer, clips, language):
    ours, info = translate(base_transcriber, clips[language])
    assert info.language == language
    assert ours.isascii() or all(ch.isascii() or not ch.isalpha() for ch in ours), ours  # English letters only
    assert compression_ratio(ours) < LOOP_RATIO, ours
    segments, _ = peer.transcribe(clips[language], task="translate")
    theirs = "".join(s.text for s in segments).strip()
    assert content_overlap(ours, theirs) >= MIN_OVERLAP, (ours, theirs)
