"""Core ML model runtimes behind one interface (`runtime.py`); `registry.py` finds them by name."""

from .runtime import (
    Availability,
    ComputeUnits,
    CoreMLRuntime,
    LoadedModel,
    LoadStage,
    ModelDescription,
    PredictResult,
    TensorSpec,
)

__all__ = [
    "Availability",
    "ComputeUnits",
    "CoreMLRuntime",
    "LoadedModel",
    "LoadStage",
    "ModelDescription",
    "PredictResult",
    "TensorSpec",
]
