"""Whisper's tokenizer from openai-whisper's tiktoken rank files (gpt2.tiktoken, multilingual.tiktoken).

MLX-format folders often carry no tokenizer.json: mlx_whisper reads these rank files instead. A
rank file lists each BPE token as base64 bytes and its rank (= id). The special tokens follow the
last rank in a fixed order: <|endoftext|>, <|startoftranscript|>, one per language, <|translate|>,
<|transcribe|>, <|startoflm|>, <|startofprev|>, <|nospeech|>, <|notimestamps|>, then 1501
timestamps <|0.00|> ... <|30.00|>. Needs the optional `tiktoken` package (extra "tiktoken").
"""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

from .. import config
from ..errors import ModelNotFound
from .languages import LANGUAGES

# GPT-2's pre-tokenization: contractions, letters, digits, other symbols, whitespace runs.
_GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def rank_file_name(multilingual: bool) -> str:
    return "multilingual.tiktoken" if multilingual else "gpt2.tiktoken"


def find_tiktoken_file(model_dir: Path, multilingual: bool) -> Path | None:
    """The rank file: in the model folder, in $MLX_AUDIO_COREML_HOME/assets, or in an installed
    openai-whisper / mlx_whisper package."""
    name = rank_file_name(multilingual)
    candidates = [Path(model_dir) / name, config.assets_dir() / name]
    for package in ("whisper", "mlx_whisper"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin:
            candidates.append(Path(spec.origin).parent / "assets" / name)
    return next((path for path in candidates if path.is_file()), None)


def read_ranks(path: Path) -> dict[bytes, int]:
    ranks = {}
    for line in Path(path).read_text(encoding="ascii").splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def special_tokens(first_id: int, num_languages: int = 100) -> dict[str, int]:
    """Whisper's special tokens and their ids, starting right after the BPE ranks."""
    names = ["<|endoftext|>", "<|startoftranscript|>", *[f"<|{code}|>" for code in list(LANGUAGES)[:num_languages]],
             "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
             "<|notimestamps|>", *[f"<|{i * 0.02:.2f}|>" for i in range(1501)]]  # fmt: skip
    return {name: first_id + i for i, name in enumerate(names)}


class TiktokenBackend:
    """The `TokenizerBackend` over a tiktoken rank file."""

    def __init__(self, path: Path, multilingual: bool, num_languages: int = 100) -> None:
        try:
            import tiktoken
        except ImportError as exc:
            raise ModelNotFound(
                str(path),
                "Reading tiktoken rank files needs the tiktoken package: pip install 'mlx-audio-coreml[tiktoken]'",
            ) from exc
        ranks = read_ranks(path)
        self.path = Path(path)
        self._specials = special_tokens(len(ranks), num_languages if multilingual else 99)
        self._encoding = tiktoken.Encoding(
            name=self.path.stem,
            explicit_n_vocab=len(ranks) + len(self._specials),
            pat_str=_GPT2_PATTERN,
            mergeable_ranks=ranks,
            special_tokens=self._specials,
        )

    def encode(self, text: str) -> list[int]:
        return self._encoding.encode(text, allowed_special=set(self._specials))

    def decode(self, ids: list[int]) -> str:
        return self._encoding.decode(list(ids))

    def token_to_id(self, token: str) -> int | None:
        if token in self._specials:
            return self._specials[token]
        try:
            return self._encoding.encode_single_token(token.encode("utf-8"))
        except KeyError:
            return None
