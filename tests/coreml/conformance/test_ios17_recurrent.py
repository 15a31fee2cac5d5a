"""coremltools' iOS17 recurrent op tests, predicting through the portable runtime (see conftest.py)."""

import pytest
from coremltools.converters.mil.mil.ops.tests.iOS17.test_recurrent import *  # noqa: F401,F403

pytestmark = pytest.mark.slow
