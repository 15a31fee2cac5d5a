"""The portable Core ML runtime: ML Programs (.mlpackage) executed with MLX on any machine.

`PortableRuntime().load(path)` returns a `PortableModel` (the `LoadedModel` interface of
coreml/runtime.py). Package reading is in package.py/blob.py/values.py, the graph in graph.py,
execution in program.py, and the op implementations in ops/.
"""

from .ops import supported_ops
from .runtime import PortableModel, PortableRuntime

__all__ = ["PortableModel", "PortableRuntime", "supported_ops"]
