"""openai-whisper (OpenAI's original PyTorch implementation) as a peer engine, on our weights.

Why our weights: openai-whisper downloads its .pt checkpoints from OpenAI's servers, which this
machine cannot reach (only PyPI is). So we read the same CTranslate2 folders our engine uses with
our strict loader (`load_whisper`, float32) and copy every tensor into openai-whisper's `Whisper`
module; both engines then run identical weights. Its tokenizer is its own (the .tiktoken files
bundled in the package), which numbers tokens as ours does.

Names, ours (MLX `Whisper`) -> openai-whisper's state_dict; `load_state_dict(strict=True)` fails
on any name left over or missing on either side:
  - `*.mlp1.*` -> `*.mlp.0.*` and `*.mlp2.*` -> `*.mlp.2.*` (its MLP is nn.Sequential(Linear, GELU, Linear));
  - `encoder.conv{1,2}.weight`: MLX is channels-last (out, k, in), torch is (out, in, k);
  - `encoder._positional_embedding` (a private MLX attribute, not a parameter; the table stored in
    the folder) -> the buffer `encoder.positional_embedding`;
  - every other name is the same on both sides: `{encoder,decoder}.blocks.N.{attn,cross_attn}.
    {query,key,value,out}.*` (neither has a key bias), `*_ln.*`, `encoder.ln_post.*`,
    `decoder.token_embedding.weight`, `decoder.positional_embedding` (a parameter in both), `decoder.ln.*`.
Alignment heads stay at openai-whisper's default (last half of the decoder): plain transcription
does not use them. Import this module after `mlx_audio_coreml` has loaded OpenBLAS (it does so itself).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mlx_audio_coreml  # noqa: F401  (loads OpenBLAS before MLX)
from mlx_audio_coreml.whisper.loading import load_whisper
from mlx_audio_coreml.whisper.model_names import resolve_local

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip
from mlx.utils import tree_flatten  # isort: skip

_RENAMES = ((".mlp1.", ".mlp.0."), (".mlp2.", ".mlp.2."))
_CONV_WEIGHTS = ("encoder.conv1.weight", "encoder.conv2.weight")


def torch_name(name: str) -> str:
    """openai-whisper's name for one of our parameter names."""
    for ours, theirs in _RENAMES:
        name = name.replace(ours, theirs)
    return name


def _to_numpy(name: str, value: mx.array) -> np.ndarray:
    array = np.array(value.astype(mx.float32))
    if name in _CONV_WEIGHTS:
        array = array.transpose(0, 2, 1)  # (out, k, in) -> (out, in, k)
    return np.ascontiguousarray(array)


def openai_state_dict(model: Any) -> dict[str, Any]:
    """Our MLX `Whisper`'s tensors as a float32 torch state_dict for openai-whisper's `Whisper`."""
    import torch

    state = {
        torch_name(name): torch.from_numpy(_to_numpy(name, value)) for name, value in tree_flatten(model.parameters())
    }
    positions = model.encoder._positional_embedding  # (n_audio_ctx, n_audio_state)
    state["encoder.positional_embedding"] = torch.from_numpy(_to_numpy("", positions))
    return state


def load_openai_model(model: str) -> Any:
    """openai-whisper's `Whisper` (float32, CPU, eval mode) holding the weights of our model `model`."""
    import whisper.model

    bundle = load_whisper(resolve_local(model), dtype=mx.float32)
    dims = whisper.model.ModelDimensions(**vars(bundle.dims))
    torch_model = whisper.model.Whisper(dims)
    torch_model.load_state_dict(openai_state_dict(bundle.model), strict=True)
    return torch_model.float().eval()


def openai_whisper(model: str, audio: str, threads: int) -> Callable[[], str]:
    """A function transcribing `audio` with openai-whisper: greedy, English, no word timestamps."""
    import torch

    import whisper

    torch.set_num_threads(threads)
    torch_model = load_openai_model(model)

    def run() -> str:
        with torch.inference_mode():
            result = whisper.transcribe(
                torch_model, audio, language="en", temperature=0.0, beam_size=None, best_of=None,
                condition_on_previous_text=True, fp16=False, without_timestamps=False, word_timestamps=False,
            )  # fmt: skip
        return " ".join(segment["text"].strip() for segment in result["segments"]).strip()

    return run
