# What the type checker sees for each of coremltools' generated protobuf modules (see _proto.py).
# protoc builds their message classes at import time, so pyright reads them as variables; every
# name here is Any instead. There is no _pb2_any.py: nothing imports this at run time.
from typing import Any

def __getattr__(name: str) -> Any: ...
