"""MLX implementations of MIL ops, one module per family; importing this package registers them all."""

from . import (  # noqa: F401  (imported for their registrations)
    activation,
    attention,
    constexpr,
    control,
    conv,
    crop,
    elementwise,
    gather,
    linear,
    lists,
    norm,
    pool,
    quantization,
    random,
    recurrent,
    reduce,
    resize,
    sampling,
    shape,
    sort,
    space,
    state,
)
from .registry import NeedsHostValue, OpContext, OpDef, lookup, supported_ops, to_host

__all__ = ["NeedsHostValue", "OpContext", "OpDef", "lookup", "supported_ops", "to_host"]
