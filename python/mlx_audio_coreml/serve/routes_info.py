"""`GET /v1/models`, `GET /v1/models/{id}` and `GET /health`."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel

from ..errors.serve import ModelNotServed
from .state import server

router = APIRouter()


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "mlx-audio-coreml"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    models: list[str]
    queued: int  # requests waiting for a worker, every model together
    running: int


@router.get("/v1/models", tags=["models"])
async def list_models(request: Request) -> ModelList:
    models = server(request).models
    return ModelList(data=[ModelCard(id=name, created=models.created) for name in models.names()])


@router.get("/v1/models/{model_id}", tags=["models"])
async def get_model(request: Request, model_id: str) -> ModelCard:
    models = server(request).models
    if model_id not in models.names():
        raise ModelNotServed(model_id, models.names())
    return ModelCard(id=model_id, created=models.created)


@router.get("/health", tags=["health"])
async def health(request: Request) -> Health:
    state = server(request)
    queues = state.queues.values()
    return Health(
        models=state.models.names(), queued=sum(q.waiting for q in queues), running=sum(q.running for q in queues)
    )
