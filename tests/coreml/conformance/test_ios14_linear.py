"""coremltools' iOS14 linear op tests, predicting through the portable runtime (see conftest.py)."""

from coremltools.converters.mil.mil.ops.tests.iOS14.test_linear import *  # noqa: F401,F403

# fast (about 15 s): part of the default run, so linear/matmul/einsum conformance is always checked
