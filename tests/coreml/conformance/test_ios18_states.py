"""coremltools' iOS18 states op tests, predicting through the portable runtime (see conftest.py)."""

import pytest
from coremltools.converters.mil.mil.ops.tests.iOS18.test_states import *  # noqa: F401,F403

pytestmark = pytest.mark.slow
