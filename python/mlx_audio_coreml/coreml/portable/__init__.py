"""The portable Core ML runtime: ML Programs (.mlpackage) executed with MLX on any machine.

`PortableRuntime().load(path)` returns a `PortableModel` (the `LoadedModel` interface of
coreml/runtime.py). Package reading is in package.py/blob.py/values.py, the graph in graph.py,
execution in program.py, the op implementations in ops/, and the load-time rewrites (per-head
attention fused, channels-last layout) in fuse.py and layout.py, with rewrite.py their helpers.
"""

from .ops import supported_ops
from .runtime import PortableModel, PortableRuntime

__all__ = ["PortableModel", "PortableRuntime", "supported_ops"]
