"""coremltools' iOS18 transformers op tests, predicting through the portable runtime (see conftest.py)."""

import pytest
from coremltools.converters.mil.mil.ops.tests.iOS18.test_transformers import *  # noqa: F401,F403

pytestmark = pytest.mark.slow
