"""Small ONNX graphs named the way kokoro-onnx exports Kokoro: the float form, and the int8 form that
onnxruntime's dynamic quantization makes of it (as the real export was made). The weights must come
back by following the graph; LSTM gates must match PyTorch's once converted."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from mlx_audio_coreml.kokoro.weights.onnx_state import load_onnx_state, torch_lstm_to_onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

T = 7
SHAPES = {
    "text_encoder.embedding.weight": (10, 8),
    "text_encoder.cnn.0.0.weight": (8, 8, 3),
    "text_encoder.cnn.0.0.bias": (8,),
    **{
        f"text_encoder.lstm.{n}{s}": shape
        for n, shape in {
            "weight_ih_l0": (16, 8),
            "weight_hh_l0": (16, 4),
            "bias_ih_l0": (16,),
            "bias_hh_l0": (16,),
        }.items()
        for s in ("", "_reverse")
    },
    "bert_encoder.weight": (6, 8),
    "bert_encoder.bias": (6,),
    "decoder.generator.ups.0.weight": (8, 4, 4),
    "predictor.F0.0.norm1.fc.weight": (6, 3),
    "predictor.F0.0.norm1.fc.bias": (6,),
    "decoder.generator.resblocks.0.alpha1.0": (1, 8, 1),
}


@pytest.fixture(scope="module")
def canonical() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {k: rng.standard_normal(s).astype(np.float32) * 0.5 for k, s in SHAPES.items()}


def _float_graph(state: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    w, r, b = torch_lstm_to_onnx(state, "text_encoder.lstm")
    inits = {
        "encoder.text_encoder.embedding.weight": state["text_encoder.embedding.weight"],
        "/encoder/text_encoder/cnn.0/Mul_output_0": state["text_encoder.cnn.0.0.weight"],  # folded weight norm
        "encoder.text_encoder.cnn.0.0.bias": state["text_encoder.cnn.0.0.bias"],
        "onnx::LSTM_2": w,
        "onnx::LSTM_3": r,
        "onnx::LSTM_1": b,
        "onnx::MatMul_9": state["bert_encoder.weight"].T.copy(),
        "encoder.bert_encoder.bias": state["bert_encoder.bias"],
        "/decoder/decoder/generator/Mul_output_0": state["decoder.generator.ups.0.weight"],
        "encoder.predictor.F0.0.norm1.fc.weight": state["predictor.F0.0.norm1.fc.weight"],
        "encoder.predictor.F0.0.norm1.fc.bias": state["predictor.F0.0.norm1.fc.bias"],
        "decoder.decoder.generator.resblocks.0.alpha1.0": state["decoder.generator.resblocks.0.alpha1.0"],
        "decoder.decoder.generator.stft.istft.stft.window_sum": np.ones(4, np.float32),  # a buffer, not a weight
        "shape_t8": np.array([T, 8], np.int64),
        "zero": np.array(0, np.int64),
    }
    te = "/encoder/text_encoder"
    nodes = [
        helper.make_node(
            "Gather", ["encoder.text_encoder.embedding.weight", "tokens"], ["emb"], f"{te}/embedding/Gather"
        ),
        helper.make_node("Transpose", ["emb"], ["emb_t"], f"{te}/Transpose", perm=[0, 2, 1]),
        helper.make_node(
            "Conv",
            ["emb_t", "/encoder/text_encoder/cnn.0/Mul_output_0", "encoder.text_encoder.cnn.0.0.bias"],
            ["conv"],
            f"{te}/cnn.0/cnn.0.0/Conv",
            pads=[1, 1],
        ),
        helper.make_node("Transpose", ["conv"], ["seq"], f"{te}/lstm/Transpose", perm=[2, 0, 1]),
        helper.make_node(
            "LSTM",
            ["seq", "onnx::LSTM_2", "onnx::LSTM_3", "onnx::LSTM_1"],
            ["lstm_y"],
            f"{te}/lstm/LSTM",
            hidden_size=4,
            direction="bidirectional",
        ),
        helper.make_node("Transpose", ["lstm_y"], ["lstm_t"], f"{te}/lstm/Transpose_1", perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["lstm_t", "shape_t8"], ["lstm_flat"], f"{te}/lstm/Reshape"),
        helper.make_node("MatMul", ["lstm_flat", "onnx::MatMul_9"], ["mm"], "/encoder/bert_encoder/MatMul"),
        helper.make_node("Add", ["encoder.bert_encoder.bias", "mm"], ["linear"], "/encoder/bert_encoder/Add"),
        helper.make_node(
            "ConvTranspose",
            ["conv", "/decoder/decoder/generator/Mul_output_0"],
            ["up"],
            "/decoder/decoder/generator/ups.0/ConvTranspose",
            strides=[2],
        ),
        helper.make_node(
            "Gemm",
            ["style", "encoder.predictor.F0.0.norm1.fc.weight", "encoder.predictor.F0.0.norm1.fc.bias"],
            ["fc"],
            "/encoder/F0.0/norm1/fc/Gemm",
            transB=1,
        ),
        helper.make_node(
            "Mul",
            ["decoder.decoder.generator.resblocks.0.alpha1.0", "conv"],
            ["snake"],
            "/decoder/decoder/generator/resblocks.0/Mul",
        ),
        helper.make_node("Gather", ["shape_t8", "zero"], ["t_dim"], "/encoder/Gather"),  # shape arithmetic, no weight
    ]
    graph = helper.make_graph(
        nodes,
        "kokoro_tiny",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, T]),
            helper.make_tensor_value_info("style", TensorProto.FLOAT, [1, 3]),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("linear", "lstm_y", "up", "fc", "snake")],
        [numpy_helper.from_array(np.asarray(v), name=k) for k, v in inits.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_float_graph_gives_back_the_exact_state(tmp_path: Path, canonical: dict) -> None:
    onnx.save(_float_graph(canonical), tmp_path / "kokoro-v1.0.onnx")
    state = load_onnx_state(tmp_path / "kokoro-v1.0.onnx")
    assert set(state) == set(SHAPES)
    for key, value in canonical.items():
        np.testing.assert_array_equal(state[key], value, err_msg=key)


def test_onnx_lstm_equals_torch_lstm_with_the_converted_weights(tmp_path: Path, canonical: dict) -> None:
    torch = pytest.importorskip("torch")
    onnx.save(_float_graph(canonical), tmp_path / "k.onnx")
    tokens = np.arange(T, dtype=np.int64)[None] % 10
    session = ort.InferenceSession(str(tmp_path / "k.onnx"), providers=["CPUExecutionProvider"])
    conv, lstm_y = session.run(["snake", "lstm_y"], {"tokens": tokens, "style": np.zeros((1, 3), np.float32)})
    lstm = torch.nn.LSTM(8, 4, bidirectional=True)
    lstm.load_state_dict(
        {
            k.removeprefix("text_encoder.lstm."): torch.from_numpy(v)
            for k, v in load_onnx_state(tmp_path / "k.onnx").items()
            if k.startswith("text_encoder.lstm.")
        }
    )
    x = conv / canonical["decoder.generator.resblocks.0.alpha1.0"]  # undo the alpha Mul: the LSTM's input
    with torch.no_grad():
        ours, _ = lstm(torch.from_numpy(x[0].T.copy()[:, None]))  # (T, 1, 2H)
    np.testing.assert_allclose(ours.numpy()[:, 0].reshape(T, 2, 4), lstm_y[:, :, 0], rtol=1e-4, atol=1e-5)


def test_dynamically_quantized_graph_is_dequantized_by_following_it(tmp_path: Path, canonical: dict) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    onnx.save(_float_graph(canonical), tmp_path / "float.onnx")
    quantize_dynamic(
        tmp_path / "float.onnx",
        tmp_path / "int8.onnx",
        weight_type=QuantType.QUInt8,
        op_types_to_quantize=["Conv", "MatMul", "Gemm", "LSTM", "Gather"],
    )
    ops = {n.op_type for n in onnx.load(tmp_path / "int8.onnx").graph.node}
    assert {"ConvInteger", "MatMulInteger", "DynamicQuantizeLSTM"} <= ops
    state = load_onnx_state(tmp_path / "int8.onnx")
    assert set(state) == set(SHAPES)
    for key, value in canonical.items():
        step = (value.max() - min(value.min(), 0)) / 127  # coarser than any int8/uint8 step of this tensor
        assert np.abs(state[key] - value).max() <= step, key
