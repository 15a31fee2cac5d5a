"""coremltools' protobuf modules, imported without its warnings about the Mac-only native parts.

Importing `coremltools.proto` runs coremltools' package initialisation, which logs a warning for
each macOS library it cannot load; those say nothing about reading packages, so they are muted
for the first import only.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if "coremltools" not in sys.modules:
    _logger = logging.getLogger("coremltools")
    _previous = _logger.level
    _logger.setLevel(logging.ERROR)
    try:
        import coremltools  # noqa: F401
    finally:
        _logger.setLevel(_previous)

if TYPE_CHECKING:
    # coremltools ships no stubs for its protoc output; _pb2_any.pyi types every name as Any.
    from . import _pb2_any as FeatureTypes_pb2
    from . import _pb2_any as MIL_pb2
    from . import _pb2_any as Model_pb2
else:
    from coremltools.proto import FeatureTypes_pb2, MIL_pb2, Model_pb2

__all__ = ["FeatureTypes_pb2", "MIL_pb2", "Model_pb2"]
