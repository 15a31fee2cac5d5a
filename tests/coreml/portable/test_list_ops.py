"""Tensor lists (make_list, list_read/write/gather/scatter/length), alone and through a while_loop."""

from __future__ import annotations

import mlx.core as mx
import numpy as np
import pytest
from portable_helpers import ct, load, mb, save_program

from mlx_audio_coreml.coreml.portable.ops.lists import TensorList


def test_writes_past_the_end_grow_the_list_with_zeros(tmp_path):
    def build(a, b):
        ls = mb.make_list(init_length=2, elem_shape=(3,))
        ls = mb.list_write(ls=ls, index=0, value=a)
        ls = mb.list_write(ls=ls, index=5, value=b)
        ls = mb.list_scatter(ls=ls, indices=[3, 1], value=mb.stack(values=(b, a), axis=0))
        return mb.list_gather(ls=ls, indices=[5, 4, 3, 1, 0]), mb.list_length(ls=ls)

    a, b = np.array([1, 2, 3], np.float32), np.array([-4, 5, -6], np.float32)
    model = load(save_program(tmp_path, build, [(3,), (3,)], opset=ct.target.iOS15))
    out = model.predict({"a": a, "b": b}).outputs
    gathered, length = (out[spec.name] for spec in model.description.outputs)
    reference = [a, a, np.zeros(3), b, np.zeros(3), b]  # the list as a python list
    np.testing.assert_array_equal(gathered, np.stack([reference[i] for i in (5, 4, 3, 1, 0)]))
    assert int(np.asarray(length).reshape(-1)[0]) == len(reference)


def test_a_while_loop_appends_to_a_list(tmp_path):
    def cond(i, n, ls, step):
        return mb.less(x=mb.cast(x=i, dtype="fp32"), y=n)

    def body(i, n, ls, step):
        value = mb.mul(x=step, y=mb.cast(x=i, dtype="fp32"))
        return mb.add(x=i, y=1), n, mb.list_write(ls=ls, index=i, value=value), step

    def build(n, step):
        ls = mb.make_list(init_length=1, elem_shape=(2,))
        _, _, final, _ = mb.while_loop(_cond=cond, _body=body, loop_vars=(0, n, ls, step))
        return mb.list_gather(ls=final, indices=mb.range_1d(start=0, end=mb.list_length(ls=final), step=1))

    model = load(save_program(tmp_path, build, [(1,), (2,)], opset=ct.target.iOS15))
    step = np.array([1.5, -2.0], np.float32)
    out = next(iter(model.predict({"n": np.array([4], np.float32), "step": step}).outputs.values()))
    np.testing.assert_array_equal(out, np.arange(4, dtype=np.float32)[:, None] * step)


def test_list_values_check_shapes_and_bounds():
    lst = TensorList((None, None), (2,), mx.float32)
    np.testing.assert_array_equal(np.array(lst.read(1)), [0, 0])
    with pytest.raises(IndexError):
        lst.read(2)
    with pytest.raises(ValueError):
        lst.write(0, mx.zeros((3,)))
    symbolic = TensorList((None,), None, mx.float32)
    with pytest.raises(ValueError):
        symbolic.read(0)  # no element written yet: the zeros' shape is unknown
    assert symbolic.write(2, mx.ones((4,))).read(0).shape == (4,)
