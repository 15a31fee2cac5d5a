"""Core ML model runtimes behind one interface (`runtime.py`); `registry.py` finds them by name."""

from .runtime import (
    Availability,
    ComputeUnits,
    CoreMLRuntime,
    LoadedModel,
    LoadStage,
    ModelDescription,
    ModelState,
    PredictResult,
    StatefulModel,
    TensorSpec,
)

__all__ = [
    "Availability",
    "ComputeUnits",
    "CoreMLRuntime",
    "LoadedModel",
    "LoadStage",
    "ModelDescription",
    "ModelState",
    "PredictResult",
    "StatefulModel",
    "TensorSpec",
]
