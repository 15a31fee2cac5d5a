"""coremltools' iOS16 conv op tests, predicting through the portable runtime (see conftest.py)."""

import pytest
from coremltools.converters.mil.mil.ops.tests.iOS16.test_conv import *  # noqa: F401,F403

pytestmark = pytest.mark.slow
