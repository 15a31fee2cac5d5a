"""Load a Whisper model folder (MLX, transformers or CTranslate2 format) into a `WhisperBundle`.

Loading is strict: the tensors read must match the model's parameters one for one, by name and
shape, or `WeightsMismatch` names every missing, unexpected and misshapen key. The default dtype
depends on the device: float16 on a GPU, float32 on the CPU, where MLX's float16 matrix products
do not go through BLAS and are many times slower (bench/model_speed.py measures it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

from ..cpu import host_math
from ..errors import (
    CorruptModelFile,
    ModelNotFound,
    UnsupportedModelFormat,
    WeightsMismatch,
)
from . import host_decoder, host_encoder
from .model import ModelDimensions, Whisper
from .quantize import (
    QuantizationSpec,
    host_int8_applies,
    parse_quantization,
    quantize_model,
    use_host_int8,
)
from .tokenizer import Tokenizer, get_tokenizer, load_backend
from .weights import CONFIG_KEYS, WeightsFile, sha256_of_files
from .weights import ctranslate2 as ct2_format
from .weights import mlx as mlx_format
from .weights import transformers as hf_format

_FORMATS = (mlx_format, hf_format, ct2_format)  # checked in this order


@dataclass
class WhisperBundle:
    """Everything loaded from one model folder."""

    model: Whisper
    dims: ModelDimensions
    tokenizer: Tokenizer  # the model's default; `get_tokenizer(bundle, language=..., task=...)` for others
    config: dict[str, Any]  # alignment_heads, suppress_ids, suppress_ids_begin, lang_ids
    source_format: str  # "mlx" | "transformers" | "ctranslate2"
    model_dir: Path
    weights_sha256: str  # over the weight file(s) as stored
    dtype: mx.Dtype = mx.float32
    quantization: QuantizationSpec | None = None

    def get_tokenizer(self, language: str | None = None, task: str | None = None) -> Tokenizer:
        return get_tokenizer(self, language=language, task=task)


def default_dtype() -> mx.Dtype:
    """float16 where MLX runs on a GPU, float32 on the CPU (faster there; see the module docstring)."""
    return mx.float16 if mx.default_device() == mx.gpu else mx.float32


def detect_format(model_dir: Path) -> str:
    """The format of the weights in `model_dir`; UnsupportedModelFormat when none is recognized."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelNotFound(str(model_dir), "No such folder. Pass a model folder or a short name such as tiny.en.")
    for module in _FORMATS:
        if module.detect(model_dir):
            return module.FORMAT
    raise UnsupportedModelFormat(str(model_dir), sorted(p.name for p in model_dir.iterdir()))


def read_weights(model_dir: Path) -> WeightsFile:
    """Read the folder's weights in whatever format it holds, under our parameter names."""
    name = detect_format(model_dir)
    module = next(m for m in _FORMATS if m.FORMAT == name)
    return module.read(Path(model_dir))


def load_whisper(model_dir: Path | str, *, dtype: mx.Dtype | None = None, quantization: Any = None) -> WhisperBundle:
    """Load the model in `model_dir`.

    `dtype` (default: `default_dtype()`) is the dtype of every floating parameter. `quantization`
    ("int8", "int4", 8, 4, a QuantizationSpec, or None / "float16" / "float32" for none) quantizes
    the linear and embedding layers after loading; MLX folders stored quantized load as stored.
    """
    model_dir = Path(model_dir)
    weights = read_weights(model_dir)
    dtype = dtype or default_dtype()
    model = Whisper(weights.dims, dtype)
    stored = QuantizationSpec(**weights.quantization) if weights.quantization else None
    if stored is not None:  # quantize the modules first, so the stored integers fit them
        quantize_model(model, stored, only=set(weights.tensors))
    load_strict(model, weights.tensors, dtype, weights.file_names)
    if weights.encoder_positions is not None:
        model.encoder.set_positional_embedding(mx.array(weights.encoder_positions))
    requested = parse_quantization(quantization)
    if requested is not None and stored is None:
        if requested.bits == 8 and host_int8_applies(dtype):
            use_host_int8(model)  # MLX has no fast quantized CPU kernels; oneDNN's int8 products are
        else:
            quantize_model(model, requested)
    mx.eval(model.parameters())
    _prepare_host_paths(model, dtype)
    backend = load_backend(model_dir, model.is_multilingual, model.num_languages)
    tokenizer = get_tokenizer(backend, multilingual=model.is_multilingual, num_languages=model.num_languages)
    config = _complete_config(weights, model, tokenizer)
    # The buffers too: an array left lazy belongs to this thread's MLX stream, and evaluating it
    # from another thread (a server's worker) fails with "There is no Stream(cpu, 0) in current thread".
    mx.eval(model.encoder._positional_embedding, model.alignment_heads)
    return WhisperBundle(
        model=model, dims=weights.dims, tokenizer=tokenizer, config=config,
        source_format=weights.format, model_dir=model_dir, weights_sha256=sha256_of_files(weights.files),
        dtype=dtype, quantization=stored or requested,
    )  # fmt: skip


def _prepare_host_paths(model: Whisper, dtype: mx.Dtype) -> None:
    """Lay out the CPU host paths' weights at load time, so the first transcription does not."""
    if not host_math.available(dtype):
        return
    if host_encoder.applies(model.encoder):
        host_encoder.prepare(model.encoder)
    if type(model.decoder.blocks[0].mlp1) is nn.Linear:
        host_decoder.prepare(model.decoder)


def load_strict(
    model: Whisper, tensors: dict[str, Any], dtype: mx.Dtype, file_names: dict[str, str] | None = None
) -> None:
    """Put `tensors` into `model`, or raise WeightsMismatch naming every difference.

    Missing keys are named as the model's parameters; unexpected and misshapen ones as the file
    names them (`file_names`: our name -> the file's, where they differ).
    """
    expected = dict(tree_flatten(model.parameters()))
    named = file_names or {}
    missing = [name for name in expected if name not in tensors]
    unexpected = [named.get(name, name) for name in tensors if name not in expected]
    shape_errors = [
        f"{named.get(name, name)}: file {list(tensors[name].shape)} vs model {list(expected[name].shape)}"
        for name in expected
        if name in tensors and tuple(tensors[name].shape) != tuple(expected[name].shape)
    ]
    if missing or unexpected or shape_errors:
        raise WeightsMismatch(missing, unexpected, shape_errors)
    converted = {}
    for name, value in tensors.items():
        array = value if isinstance(value, mx.array) else mx.array(np.ascontiguousarray(value))
        # Quantized integers keep their dtype; floats (scales and biases included) take the model's.
        converted[name] = array.astype(dtype) if mx.issubdtype(array.dtype, mx.floating) else array
    model.update(tree_unflatten(list(converted.items())))


def _complete_config(weights: WeightsFile, model: Whisper, tokenizer: Tokenizer) -> dict[str, Any]:
    """The folder's decoding facts, with openai-whisper's defaults where the folder says nothing."""
    config = {key: weights.config.get(key) for key in CONFIG_KEYS}
    if config["alignment_heads"] is not None:
        try:
            model.set_alignment_heads(config["alignment_heads"])
        except ValueError as exc:
            raise CorruptModelFile(str(weights.files[0]), str(exc)) from exc
    config["alignment_heads"] = np.array(model.alignment_heads).tolist()
    if config["suppress_ids"] is None:  # openai-whisper's "-1": non-speech symbols and the special tokens
        config["suppress_ids"] = sorted({*tokenizer.non_speech_tokens, *tokenizer.special_suppressions})
    if config["suppress_ids_begin"] is None:
        config["suppress_ids_begin"] = [*tokenizer.encode(" "), tokenizer.eot]
    if config["lang_ids"] is None:
        config["lang_ids"] = list(tokenizer.all_language_tokens)
    return config
