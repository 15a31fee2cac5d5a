"""Loaded programs share weights: the functions of a multi-function package (one per vocoder bucket) and
separate packages of the same weights hold one MLX copy of each blob constant and one prepared copy of
each host kernel (coreml/portable/shared.py), predict exactly as when loaded alone, and let the shared
copies go once every model using them is closed.
"""

from __future__ import annotations

import gc
import shutil
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_map

from kokoro_tiny import DIM_IN, STYLE, tiny_decoder
from mlx_audio_coreml.convert.kokoro import KokoroConvertOptions, convert_decoder
from mlx_audio_coreml.convert.kokoro_validate import padded_inputs, validation_features
from mlx_audio_coreml.coreml.portable import PortableRuntime, shared
from mlx_audio_coreml.coreml.portable.runtime import PortableModel

BUCKETS = (4, 8)


@pytest.fixture(scope="module")
def decoder() -> Any:
    return tiny_decoder()


@pytest.fixture(scope="module")
def multi(decoder: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    options = KokoroConvertOptions(buckets=BUCKETS, deployment_target="macOS15", layout="multifunction", validate=False)
    return convert_decoder(decoder, "multi", tmp_path_factory.mktemp("multi"), options).packages[BUCKETS[0]]


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-bucket package of another decoder of the same shapes: its weights are 1.5x the first's."""
    decoder = tiny_decoder()
    decoder.update(tree_map(lambda p: p * 1.5, decoder.parameters()))
    options = KokoroConvertOptions(buckets=(4,), layout="packages", validate=False)
    return convert_decoder(decoder, "other", tmp_path_factory.mktemp("other"), options).packages[4]


def _copies(a: PortableModel, b: PortableModel) -> tuple[int, int]:
    """(shared, copied): of the large constants both programs hold under one name with equal values,
    how many are one array and how many two (a bucket's own constants, e.g. ramps of its length, differ)."""
    mine, theirs = a.program.constants.device, b.program.constants.device
    equal = [
        name
        for name, value in mine.items()
        if isinstance(value, mx.array) and value.size >= 64 and isinstance(theirs.get(name), mx.array)
        and theirs[name].shape == value.shape and np.array_equal(np.asarray(theirs[name]), np.asarray(value))
    ]  # fmt: skip
    same = sum(mine[name] is theirs[name] for name in equal)
    return same, len(equal) - same


def _prepared(model: PortableModel) -> set[int]:
    """Identities of the prepared values the program's nodes hold."""
    return {id(held.value) for node in model.program.block.nodes for held in node.ctx.memo.values()}


def _inputs(frames: int) -> dict[str, np.ndarray]:
    return padded_inputs(validation_features(DIM_IN, STYLE, frames - 1, seed=frames), frames)


def test_functions_of_one_package_hold_one_copy_of_the_weights(multi) -> None:
    small = PortableRuntime().load(multi, function="frames_4")
    large = PortableRuntime().load(multi, function="frames_8")
    same, copied = _copies(small, large)
    assert same > 10 and copied == 0
    small.predict(_inputs(4))
    large.predict(_inputs(8))
    assert _prepared(small) and _prepared(small) <= _prepared(large)


def test_separate_packages_of_the_same_weights_share_them_too(other, tmp_path) -> None:
    copy = shutil.copytree(other, tmp_path / other.name)  # another weight file, the same bytes
    first, second = PortableRuntime().load(other), PortableRuntime().load(copy)
    same, copied = _copies(first, second)
    assert same > 10 and copied == 0


def test_sharing_leaves_every_output_exactly_as_a_lone_load_gives_it(multi) -> None:
    together = {frames: PortableRuntime().load(multi, function=f"frames_{frames}") for frames in BUCKETS}
    shared_out = {frames: model.predict(_inputs(frames)).outputs["audio"] for frames, model in together.items()}
    for model in together.values():
        model.close()
    del together
    gc.collect()
    for frames in BUCKETS:
        lone = PortableRuntime().load(multi, function=f"frames_{frames}")
        np.testing.assert_array_equal(lone.predict(_inputs(frames)).outputs["audio"], shared_out[frames])
        lone.close()
        gc.collect()


def test_other_weights_of_the_same_shapes_are_not_taken_for_them(multi, other) -> None:
    """Loaded beside the first decoder's bucket, the other decoder predicts as it does alone."""
    first, second = PortableRuntime().load(multi, function="frames_4"), PortableRuntime().load(other)
    beside = second.predict(_inputs(4)).outputs["audio"]
    assert not np.array_equal(first.predict(_inputs(4)).outputs["audio"], beside)
    first.close()
    second.close()
    gc.collect()
    np.testing.assert_array_equal(PortableRuntime().load(other).predict(_inputs(4)).outputs["audio"], beside)


def test_closing_every_model_frees_the_shared_copies(multi) -> None:
    gc.collect()
    before = shared.counts()
    models = [PortableRuntime().load(multi, function=f"frames_{frames}") for frames in BUCKETS]
    for model, frames in zip(models, BUCKETS):
        model.predict(_inputs(frames))
    during = shared.counts()
    assert during["constants"] > before["constants"] and during["prepared"] > before["prepared"]
    models[0].close()
    gc.collect()
    after_one = shared.counts()  # the other function still holds the weights (its bucket's own constants go)
    assert after_one["prepared"] == during["prepared"] and after_one["constants"] > before["constants"]
    models[1].close()
    gc.collect()
    assert shared.counts() == before
