"""Weights formats (MLX, transformers, CTranslate2): round trips, publisher layouts, strictness, junk."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from model_helpers import random_mel, random_model, tiny_dims, write_ct2_folder, write_tokenizer_json

from mlx_audio_coreml.errors import CorruptModelFile, ModelNotFound, UnsupportedModelFormat, WeightsMismatch
from mlx_audio_coreml.whisper.loading import detect_format, load_whisper
from mlx_audio_coreml.whisper.model import sinusoids
from mlx_audio_coreml.whisper.weights import mlx as mlx_format
from mlx_audio_coreml.whisper.weights import transformers as hf_format
from mlx_audio_coreml.whisper.weights.ct2_binary import read_model_bin, write_model_bin


def fp16_exact_model(seed: int = 0):
    """A random model whose weights survive a float16 round trip unchanged (CTranslate2 stores float16)."""
    model = random_model(tiny_dims(), seed=seed)
    model.set_dtype(mx.float16)
    model.set_dtype(mx.float32)
    # CTranslate2 stores the encoder's sinusoids in float16 too, and the loader uses that table.
    model.encoder.set_positional_embedding(model.encoder._positional_embedding.astype(mx.float16))
    model.set_alignment_heads([[1, 0], [1, 3]])
    mx.eval(model.parameters())
    return model


def outputs(model) -> tuple[np.ndarray, np.ndarray]:
    features = model.encoder(random_mel(model.dims))
    logits = model.decoder(mx.array([[1, 5, 9, 200]]), features)[0]
    return np.array(features), np.array(logits)


def assert_same_outputs(a, b, atol: float = 1e-5) -> None:
    for x, y in zip(outputs(a), outputs(b)):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5)


@pytest.fixture(scope="module")
def source_model():
    return fp16_exact_model()


def with_tokenizer(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_tokenizer_json(folder / "tokenizer.json")
    return folder


def test_ctranslate2_folder_round_trips(tmp_path, source_model):
    folder = with_tokenizer(write_ct2_folder(source_model, tmp_path / "ct2", {"suppress_ids": [1, 2]}))
    bundle = load_whisper(folder, dtype=mx.float32)
    assert bundle.source_format == "ctranslate2" and bundle.dims == source_model.dims
    assert bundle.config["alignment_heads"] == [[1, 0], [1, 3]] and bundle.config["suppress_ids"] == [1, 2]
    assert bundle.weights_sha256 == hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert_same_outputs(bundle.model, source_model)


@pytest.mark.parametrize("file_name", ["weights.safetensors", "weights.npz"])
def test_mlx_folder_round_trips(tmp_path, source_model, file_name):
    folder = with_tokenizer(mlx_format.save(source_model, tmp_path / "mlx", file_name=file_name))
    bundle = load_whisper(folder, dtype=mx.float32)
    assert bundle.source_format == "mlx"
    assert bundle.config["alignment_heads"] == [[1, 0], [1, 3]]
    assert bundle.config["suppress_ids"]  # not in the folder: derived from the tokenizer
    # MLX folders store no encoder positions: mlx_whisper computes the sinusoids, and so do we.
    np.testing.assert_allclose(np.array(bundle.model.encoder._positional_embedding), np.array(sinusoids(16, 32)))
    bundle.model.encoder.set_positional_embedding(source_model.encoder._positional_embedding)
    assert_same_outputs(bundle.model, source_model, atol=0)


def test_mlx_folder_is_laid_out_like_mlx_community(tmp_path, source_model):
    folder = mlx_format.save(source_model, tmp_path / "mlx")
    config = json.loads((folder / "config.json").read_text())
    assert config == {**asdict(source_model.dims), "model_type": "whisper"}
    tensors = mx.load(str(folder / "weights.safetensors"))
    assert tensors["encoder.conv1.weight"].shape == (32, 3, 80)  # (out, kernel, in)
    assert "encoder.blocks.0.attn.query.weight" in tensors and "decoder.blocks.1.cross_attn.key.weight" in tensors
    assert "encoder.blocks.0.attn.key.bias" not in tensors
    assert tensors["alignment_heads"].dtype == mx.int64


def test_transformers_folder_round_trips(tmp_path, source_model):
    folder = with_tokenizer(hf_format.save(source_model, tmp_path / "hf", generation={"suppress_tokens": [3, 4]}))
    bundle = load_whisper(folder, dtype=mx.float32)
    assert bundle.source_format == "transformers"
    assert bundle.config["suppress_ids"] == [3, 4] and bundle.config["alignment_heads"] == [[1, 0], [1, 3]]
    assert_same_outputs(bundle.model, source_model, atol=0)


def test_transformers_folder_is_laid_out_like_openai_whisper(tmp_path, source_model):
    folder = hf_format.save(source_model, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_attention_heads"]) == (32, 2, 4)
    assert (config["num_mel_bins"], config["max_source_positions"], config["max_target_positions"]) == (80, 16, 24)
    tensors = mx.load(str(folder / "model.safetensors"))
    assert tensors["model.encoder.conv1.weight"].shape == (32, 80, 3)  # PyTorch's (out, in, kernel)
    assert "model.encoder.layers.0.self_attn.k_proj.weight" in tensors
    assert "model.encoder.layers.0.self_attn.k_proj.bias" not in tensors
    assert "model.decoder.layers.1.encoder_attn.v_proj.bias" in tensors
    assert tensors["model.encoder.embed_positions.weight"].shape == (16, 32)
    assert "proj_out.weight" not in tensors  # tied to the embedding


def test_transformers_folder_with_a_stored_output_projection_loads(tmp_path, source_model):
    folder = with_tokenizer(hf_format.save(source_model, tmp_path / "hf"))
    tensors = dict(mx.load(str(folder / "model.safetensors")))
    tensors["proj_out.weight"] = tensors["model.decoder.embed_tokens.weight"]
    mx.save_safetensors(str(folder / "model.safetensors"), tensors)
    assert_same_outputs(load_whisper(folder, dtype=mx.float32).model, source_model, atol=0)


def test_quantized_mlx_folder_loads_as_stored(tmp_path):
    from mlx_audio_coreml.whisper.quantize import QuantizationSpec, quantize_model

    model = random_model(tiny_dims(n_audio_state=64, n_text_state=64))
    quantize_model(model, QuantizationSpec(bits=4, group_size=32))
    folder = with_tokenizer(mlx_format.save(model, tmp_path / "q4", quantization={"group_size": 32, "bits": 4}))
    bundle = load_whisper(folder, dtype=mx.float32)
    assert bundle.quantization == QuantizationSpec(bits=4, group_size=32)
    assert_same_outputs(bundle.model, model, atol=0)


def test_ctranslate2_int8_weights_are_dequantized(tmp_path, source_model):
    folder = with_tokenizer(write_ct2_folder(source_model, tmp_path / "ct2"))
    stored = read_model_bin(folder / "model.bin")
    variables = dict(stored.variables)
    name = "encoder/layer_0/ffn/linear_0/weight"
    weight = variables[name].astype(np.float32)
    scale = 127.0 / np.abs(weight).max(axis=1)
    variables[name] = np.round(weight * scale[:, None]).astype(np.int8)
    variables[name + "_scale"] = scale.astype(np.float32)
    write_model_bin(folder / "model.bin", stored.spec, stored.revision, variables, stored.aliases)
    bundle = load_whisper(folder, dtype=mx.float32)
    loaded = np.array(bundle.model.encoder.blocks[0].mlp1.weight)
    np.testing.assert_allclose(loaded, weight, atol=float(np.abs(weight).max()) / 127)


def test_strict_loading_names_every_missing_and_unexpected_key(tmp_path, source_model):
    folder = with_tokenizer(mlx_format.save(source_model, tmp_path / "mlx"))
    tensors = dict(mx.load(str(folder / "weights.safetensors")))
    del tensors["decoder.blocks.1.mlp2.bias"], tensors["encoder.ln_post.weight"]
    tensors["decoder.blocks.9.attn.query.weight"] = mx.zeros((2, 2))
    tensors["encoder.conv1.weight"] = mx.zeros((32, 3, 64))
    mx.save_safetensors(str(folder / "weights.safetensors"), tensors)
    with pytest.raises(WeightsMismatch) as raised:
        load_whisper(folder)
    assert raised.value.missing == ["decoder.blocks.1.mlp2.bias", "encoder.ln_post.weight"]
    assert raised.value.unexpected == ["decoder.blocks.9.attn.query.weight"]
    assert len(raised.value.shape_errors) == 1 and "encoder.conv1.weight" in raised.value.shape_errors[0]


def test_unknown_tensors_in_transformers_and_ctranslate2_files_are_named(tmp_path, source_model):
    hf = with_tokenizer(hf_format.save(source_model, tmp_path / "hf"))
    tensors = dict(mx.load(str(hf / "model.safetensors")))
    tensors["model.encoder.layers.0.self_attn.k_proj.bias"] = mx.zeros((32,))
    mx.save_safetensors(str(hf / "model.safetensors"), tensors)
    with pytest.raises(WeightsMismatch) as raised:
        load_whisper(hf)
    assert raised.value.unexpected == ["model.encoder.layers.0.self_attn.k_proj.bias"]

    ct2 = with_tokenizer(write_ct2_folder(source_model, tmp_path / "ct2"))
    stored = read_model_bin(ct2 / "model.bin")
    variables = {**stored.variables, "encoder/layer_0/ffn/linear_7/weight": np.zeros((2, 2), np.float16)}
    variables.pop("decoder/layer_1/attention/layer_norm/beta")
    write_model_bin(ct2 / "model.bin", stored.spec, stored.revision, variables, stored.aliases)
    with pytest.raises(WeightsMismatch) as raised:
        load_whisper(ct2)
    assert raised.value.unexpected == ["encoder/layer_0/ffn/linear_7/weight"]
    with pytest.raises(WeightsMismatch) as raised:
        del variables["encoder/layer_0/ffn/linear_7/weight"]
        write_model_bin(ct2 / "model.bin", stored.spec, stored.revision, variables, stored.aliases)
        load_whisper(ct2)
    assert raised.value.missing == ["decoder.blocks.1.cross_attn_ln.bias"]


def test_a_folder_without_weights_is_an_unsupported_format(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(UnsupportedModelFormat) as raised:
        load_whisper(tmp_path)
    assert raised.value.found == ["config.json", "notes.txt"]
    with pytest.raises(ModelNotFound):
        detect_format(tmp_path / "missing")


def test_junk_and_truncated_files_are_corrupt(tmp_path, source_model):
    junk = with_tokenizer(tmp_path / "junk")
    (junk / "model.bin").write_bytes(b"\x06\x00\x00\x00garbage")
    with pytest.raises(CorruptModelFile):
        load_whisper(junk)
    ct2 = write_ct2_folder(source_model, tmp_path / "ct2")
    data = (ct2 / "model.bin").read_bytes()
    (ct2 / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptModelFile) as raised:
        load_whisper(ct2)
    assert "truncated" in raised.value.reason
    mlx_dir = mlx_format.save(source_model, tmp_path / "mlx")
    (mlx_dir / "weights.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CorruptModelFile):
        load_whisper(mlx_dir)
    (mlx_dir / "config.json").write_text("{not json")
    with pytest.raises(CorruptModelFile):
        load_whisper(mlx_dir)


def test_saving_over_an_existing_folder_leaves_it_untouched(tmp_path, source_model):
    folder = tmp_path / "mlx"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        mlx_format.save(source_model, folder)
    assert [p.name for p in tmp_path.iterdir()] == ["mlx"] and (folder / "keep.txt").read_text() == "mine"


@pytest.mark.realweights
def test_real_tiny_en_converted_to_each_format_gives_identical_outputs(tiny_en_dir, tmp_path):
    reference = load_whisper(tiny_en_dir, dtype=mx.float32)
    model = reference.model
    rng = np.random.default_rng(0)
    mel = mx.array(rng.standard_normal((1, 3000, 80)).astype(np.float32))
    tokens = mx.array([[50257, 50362, 843, 523, 616]])
    expected_features = model.encoder(mel)
    expected_logits = model.decoder(tokens, expected_features)[0]
    for save in (mlx_format.save, hf_format.save):
        folder = save(model, tmp_path / save.__module__.rsplit(".", 1)[-1])
        shutil.copy(tiny_en_dir / "tokenizer.json", folder / "tokenizer.json")
        converted = load_whisper(folder, dtype=mx.float32)
        assert converted.dims == reference.dims
        assert converted.config["alignment_heads"] == reference.config["alignment_heads"]
        if save is mlx_format.save:  # the MLX format computes the sinusoids CTranslate2 stores in float16
            stored = np.array(model.encoder._positional_embedding)
            np.testing.assert_allclose(np.array(converted.model.encoder._positional_embedding), stored, atol=1e-3)
            converted.model.encoder.set_positional_embedding(model.encoder._positional_embedding)
        for (name, got), (_, want) in zip(tree_flatten(converted.model.parameters()), tree_flatten(model.parameters())):
            np.testing.assert_array_equal(np.array(got), np.array(want), err_msg=name)  # every weight bit for bit
        # Outputs within float32 rounding: the CPU host kernels split sums between threads, so the
        # order of additions (not the weights) can differ between two runs (5.7e-6 seen in a full run).
        features = converted.model.encoder(mel)
        np.testing.assert_allclose(np.array(features), np.array(expected_features), rtol=0, atol=1e-5)
        logits = np.array(converted.model.decoder(tokens, features)[0])
        np.testing.assert_allclose(logits, np.array(expected_logits), rtol=0, atol=1e-4)


@pytest.mark.realweights
def test_real_tiny_en_ctranslate2_file_maps_onto_every_parameter(tiny_en_dir):
    bundle = load_whisper(tiny_en_dir, dtype=mx.float32)
    names = {name for name, _ in tree_flatten(bundle.model.parameters())}
    assert len(names) == 4 * 15 + 4 * 24 + 10  # encoder blocks, decoder blocks, convs / norms / embeddings
    assert bundle.dims.n_vocab == 51864 and bundle.dims.n_audio_head == 6
    assert bundle.config["alignment_heads"] == [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]
