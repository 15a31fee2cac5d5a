"""Kokoro-82M on one NVIDIA GPU: our MLX model vs PyTorch running hexgrad's `kokoro` package, same weights.

Weights: random at Kokoro-82M's real shapes (hexgrad's config.json, kept in tests/kokoro/hexgrad_config.json),
made once by hexgrad's own `KModel` (PyTorch's default initialization, seeded; nothing downloaded: its
checkpoint load is skipped), with the duration head's bias set so a token lasts ~2-3 frames as in real
speech. The same tensors reach our model through the product's own .pth reader (weight norm folded,
kokoro/weights/formats.py), so both engines compute the same network on the same token ids, reference
style and speed. Timed per call, token ids in, 24 kHz audio out (durations predicted by each): ours is
`model.features` + `model.decoder` (float32, eager) ending in mx.eval + mx.synchronize; the peer is
`KModel.forward_with_tokens` under inference_mode ending in torch.cuda.synchronize. Medians after
warm-up; the table gives ms per call, audio seconds, real-time factors and the ratio, plus peak device
memory; outputs are checked finite and the predicted frame counts printed (equal weights: equal up to
float rounding of a duration or two).

Wheels for the GPU machine (cp312 manylinux or pure Python, via `tools/gpu-wheels NAME...`): mlx,
mlx-cuda-13 (ours); kokoro (hexgrad's package, pure Python; its __init__ pulls misaki and spaCy for
G2P, so this script loads `kokoro.model` without running it), transformers and its pure-Python needs
(huggingface_hub, safetensors, tokenizers, regex, pyyaml, tqdm, filelock, packaging, requests),
loguru; torch with CUDA is already on the machine.

GPU (H100):
    source .gpu/b/env.sh && PYTHONPATH=python:/tmp/site python3 bench/kokoro_gpu.py --out kokoro_gpu_h100
CPU smoke test (tiny lengths, one repeat):
    .venv/bin/python bench/kokoro_gpu.py --smoke --out kokoro_gpu_smoke_cpu
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import platform
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import mlx_audio_coreml  # noqa: F401  (loads a fast BLAS before MLX on the CPU)
from mlx_audio_coreml.kokoro.config import KokoroConfig
from mlx_audio_coreml.kokoro.model.kokoro_model import KokoroModel
from mlx_audio_coreml.kokoro.weights.canonical import canonical_shapes
from mlx_audio_coreml.kokoro.weights.formats import load_pth_state

import mlx.core as mx  # isort: skip
import numpy as np  # isort: skip

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "kokoro" / "hexgrad_config.json"
SAMPLE_RATE = 24000
DURATION_BIAS = -3.0  # sigmoid(-3) * 50 bins ~ 2.4 frames per token


def hexgrad_kmodel_class() -> type:
    """hexgrad's KModel, imported without running kokoro/__init__.py (its pipeline needs misaki + spaCy)."""
    spec = importlib.util.find_spec("kokoro")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("hexgrad's `kokoro` package is not installed")
    package = types.ModuleType("kokoro")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules.setdefault("kokoro", package)
    from kokoro.model import KModel  # type: ignore[import-not-found]

    return KModel


def build_peer(config: dict[str, Any], device: str, seed: int) -> Any:
    """hexgrad's KModel with seeded random weights (its checkpoint load skipped), on `device`, eval mode."""
    import torch

    torch.manual_seed(seed)
    kmodel = hexgrad_kmodel_class()
    kwargs: dict[str, Any] = {"config": config, "model": "random-weights"}
    if "repo_id" in inspect.signature(kmodel.__init__).parameters:
        kwargs["repo_id"] = "hexgrad/Kokoro-82M"  # only named, never fetched: config and model are given
    with mock.patch("torch.load", return_value={}):
        peer = kmodel(**kwargs)
    with torch.no_grad():
        peer.predictor.duration_proj.linear_layer.bias.fill_(DURATION_BIAS)
    return peer.to(device).eval()


def ours_from_peer(peer: Any, config: dict[str, Any]) -> KokoroModel:
    """Our model on the peer's exact tensors, through the product's hexgrad .pth reader."""
    import torch

    parts = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.pth"
        torch.save({p: {k: v.detach().cpu() for k, v in getattr(peer, p).state_dict().items()} for p in parts}, path)
        state = load_pth_state(path, canonical_shapes(config))
    model = KokoroModel(KokoroConfig.from_dict(config))
    model.load_state(state)
    mx.eval(model.parameters())
    return model


def time_calls(run: Callable[[], tuple[np.ndarray, int]], repeats: int) -> tuple[float, np.ndarray, int]:
    """(median ms, last audio, frames) after one warm-up call."""
    audio, frames = run()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        audio, frames = run()
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds), audio, frames


def ours_call(model: KokoroModel, ids: np.ndarray, style: np.ndarray) -> Callable[[], tuple[np.ndarray, int]]:
    token_ids, ref = mx.array(ids[None].astype(np.int32)), mx.array(style)

    def run() -> tuple[np.ndarray, int]:
        features, durations = model.features(token_ids, ref, 1.0)
        audio = model.decoder(features)
        mx.eval(audio, durations)
        mx.synchronize()
        return np.array(audio)[0], int(np.array(durations).sum())

    return run


def peer_call(peer: Any, ids: np.ndarray, style: np.ndarray, device: str) -> Callable[[], tuple[np.ndarray, int]]:
    import torch

    token_ids = torch.tensor(ids[None].astype(np.int64), device=device)
    ref = torch.tensor(style, device=device)

    def run() -> tuple[np.ndarray, int]:
        with torch.inference_mode():
            audio, durations = peer.forward_with_tokens(token_ids, ref, 1.0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return audio.float().cpu().numpy().reshape(-1), int(durations.sum())

    return run


def peak_memory() -> tuple[str, str]:
    """Peak device memory of ours (MLX) and of the peer (PyTorch's CUDA allocator), in MB, or 'n/a'."""
    ours, theirs = "n/a", "n/a"
    try:
        ours = f"{mx.get_peak_memory() / 2**20:.0f}"
    except AttributeError:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            theirs = f"{torch.cuda.max_memory_allocated() / 2**20:.0f}"
    except ImportError:
        pass
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128, 510], help="tokens per call, pads included")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="CPU, lengths 12 and 24, one repeat")
    parser.add_argument("--out", default="kokoro_gpu_h100")
    args = parser.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if args.smoke:
        args.lengths, args.repeats = [12, 24], 1
    config = json.loads(CONFIG.read_text())
    peer = build_peer(config, device, args.seed)
    model = ours_from_peer(peer, config)
    rng = np.random.default_rng(args.seed)
    rows = ["| tokens | frames ours / peer | audio s | ours ms | PyTorch (hexgrad) ms | RTF ours | RTF PyTorch | PyTorch time / ours |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for length in args.lengths:
        ids = np.concatenate([[0], rng.integers(1, config["n_token"], length - 2), [0]])
        style = (0.1 * rng.standard_normal((1, 256))).astype(np.float32)
        mine, audio, frames = time_calls(ours_call(model, ids, style), args.repeats)
        theirs, peer_audio, peer_frames = time_calls(peer_call(peer, ids, style, device), args.repeats)
        if not (np.isfinite(audio).all() and np.isfinite(peer_audio).all()):
            raise SystemExit(f"non-finite audio at {length} tokens")
        seconds = len(audio) / SAMPLE_RATE
        rows.append(f"| {length} | {frames} / {peer_frames} | {seconds:.2f} | {mine:.1f} | {theirs:.1f} | "
                    f"{mine / 1e3 / seconds:.4f} | {theirs / 1e3 / len(peer_audio) * SAMPLE_RATE:.4f} | {theirs / mine:.2f}x |")  # fmt: skip
        print(rows[-1], flush=True)
    ours_mb, peer_mb = peak_memory()
    lines = [
        "# Kokoro-82M on a GPU: mlx-audio-coreml (MLX) vs PyTorch + hexgrad's kokoro, same random weights", "",
        f"Device: {torch.cuda.get_device_name() if device == 'cuda' else platform.processor() or 'cpu'}; "
        f"mlx {mx.__version__} ({mx.default_device()}), torch {torch.__version__}; float32 both; "
        f"{args.repeats} timed calls after one warm-up, medians.", "",
        *rows, "", f"Peak device memory: ours {ours_mb} MB, PyTorch {peer_mb} MB.", "",
        "Command: `python3 bench/kokoro_gpu.py " + " ".join(sys.argv[1:]) + "`",
    ]  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / f"{args.out}.md").write_text(text)


if __name__ == "__main__":
    main()
