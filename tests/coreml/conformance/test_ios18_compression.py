"""coremltools' iOS18 compression op tests, predicting through the portable runtime (see conftest.py)."""

import pytest
from coremltools.converters.mil.mil.ops.tests.iOS18.test_compression import *  # noqa: F401,F403

pytestmark = pytest.mark.slow
