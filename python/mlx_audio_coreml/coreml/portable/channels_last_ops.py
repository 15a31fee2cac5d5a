"""The MIL ops channels_last.py carries a stored permutation through unchanged: element-wise unary
ops (and ones whose other parameters are scalar constants) and binary arithmetic."""

from __future__ import annotations

UNARY = frozenset(
    {
        "abs",
        "cast",
        "ceil",
        "clip",
        "cos",
        "elu",
        "erf",
        "exp",
        "floor",
        "gelu",
        "identity",
        "inverse",
        "leaky_relu",
        "linear_activation",
        "log",
        "relu",
        "relu6",
        "round",
        "rsqrt",
        "scaled_tanh",
        "sigmoid",
        "sigmoid_hard",
        "sign",
        "silu",
        "sin",
        "softplus",
        "softsign",
        "sqrt",
        "square",
        "tanh",
        "threshold",
    }
)
BINARY = frozenset({"add", "sub", "mul", "real_div", "maximum", "minimum", "pow"})
