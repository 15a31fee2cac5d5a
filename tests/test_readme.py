"""The README's Python blocks run as written and print something.

Each ```python block runs in its own interpreter, in a scratch folder where `samples/` is the
checkout's (so the README's relative paths work and nothing is written into the checkout). An HTML
comment on the line before a block changes how it is run:

    <!-- readme-test: skip (why) -->        not run (e.g. it needs a server running)
    <!-- readme-test: needs converted/X -->  slow: `mlx-audio-coreml convert whisper --model tiny.en
                                             --out converted` is run first, as the README says
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from speech_data import REPO, real_kokoro_dir, real_model_dir

README = REPO / "README.md"
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<marker>[^>]*?) -->\n)?```python\n(?P<code>.*?)```", re.S)


@dataclass(frozen=True)
class Block:
    line: int
    code: str
    marker: str  # "" when unmarked

    @property
    def needs(self) -> str | None:
        return self.marker[len("needs ") :].strip() if self.marker.startswith("needs ") else None


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [
        Block(text.count("\n", 0, m.start("code")) + 1, m.group("code"), (m.group("marker") or "").strip())
        for m in _BLOCK.finditer(text)
    ]


def _param(block: Block) -> object:
    marks = [pytest.mark.slow] if block.needs else []
    if block.marker.startswith("skip"):
        marks.append(pytest.mark.skip(reason=f"README line {block.line}: {block.marker}"))
    return pytest.param(block, id=f"line{block.line}", marks=marks)


def test_the_readme_has_python_blocks_and_known_markers() -> None:
    blocks = readme_blocks()
    assert len(blocks) >= 3
    for block in blocks:
        assert block.marker == "" or block.marker.startswith(("skip (", "needs ")), (
            f"line {block.line}: {block.marker!r}"
        )


def _scratch(tmp_path: Path) -> Path:
    (tmp_path / "samples").symlink_to(REPO / "samples", target_is_directory=True)
    return tmp_path


def _convert_tiny_en(folder: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "mlx_audio_coreml",
        "convert",
        "whisper",
        "--model",
        "tiny.en",
        "--out",
        "converted",
    ]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("block", [_param(b) for b in readme_blocks()])
def test_readme_python_block_runs_and_prints(block: Block, tmp_path: Path) -> None:
    if real_model_dir("tiny.en") is None:
        pytest.skip("real tiny.en weights not installed: bash scripts/fetch_models.sh tiny.en")
    if "KokoroSession" in block.code and real_kokoro_dir() is None:
        pytest.skip("Kokoro weights not installed: bash scripts/fetch_models.sh kokoro")
    folder = _scratch(tmp_path)
    if block.needs:
        _convert_tiny_en(folder)
        assert (folder / block.needs).exists(), (
            f"README line {block.line} needs {block.needs}, which the conversion did not write"
        )
    done = subprocess.run([sys.executable, "-c", block.code], cwd=folder, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"README line {block.line} failed:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"README line {block.line} printed nothing"
    if "samples/jfk.wav" in block.code:  # every transcription of the sample must show its words
        assert "ask not what your country" in done.stdout.lower().replace(",", ""), done.stdout
