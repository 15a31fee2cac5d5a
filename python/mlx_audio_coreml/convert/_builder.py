"""coremltools' MIL builder (`mb`), as the converters here use it.

coremltools registers every op (`mb.add`, `mb.conv`, ...) on `Builder` at import time, so a type
checker sees a class without them. `mb` is typed Any here, in this one place, so the converters'
own code still type-checks.
"""

from __future__ import annotations

from typing import Any

from coremltools.converters.mil import Builder

mb: Any = Builder

__all__ = ["mb"]
