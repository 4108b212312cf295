"""The worker wire format, modelled the way the AMI Data Companion's Antenna client models it (pydantic v2).

Field names, types, defaults and optionality follow that client, and validation runs in pydantic's default
(lax) mode, as it does there: unknown fields are ignored, a JSON number where a string is expected is
rejected, a numeric string where an int is expected is accepted. So a response that validates here is one the
real worker accepts, and a request body built here is shaped like the one it sends. To insist on canonical
JSON types (what our sandbox should emit), validate with `Model.model_validate_json(raw, strict=True)`.

Server → worker: JobList, TaskList, ResultResponse. Worker → server: TasksRequest, TaskResults (each result a
PipelineResultsResponse or a TaskResultError). Builders at the bottom make the bodies a worker posts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- GET /jobs?pipeline__slug__in=..&ids_only=1&incomplete_only=1&dispatch_mode=async_api -----------------

class JobListItem(_Wire):
    id: int
    pipeline_slug: str


class JobList(_Wire):
    """Only `results` is read (first page); count/next/previous are ignored."""

    results: list[JobListItem]


# --- POST /jobs/{id}/tasks/ -------------------------------------------------------------------------------

class TasksRequest(_Wire):
    batch_size: int


class Task(_Wire):
    id: str
    image_id: str
    image_url: str
    reply_subject: str | None = None


class TaskList(_Wire):
    """An empty list means the job has nothing left to hand out."""

    tasks: list[Task]


# --- POST /jobs/{id}/result/: the body ----------------------------------------------------------------------

class BoundingBox(_Wire):
    x1: float
    y1: float
    x2: float
    y2: float


class AlgorithmReference(_Wire):
    name: str
    key: str


class ClassificationResponse(_Wire):
    classification: str
    labels: list[str] | None = None
    scores: list[float] = Field(default_factory=list)
    logits: list[float] | None = None
    features: list[float] | None = None
    inference_time: float | None = None
    algorithm: AlgorithmReference
    terminal: bool = True
    timestamp: datetime


class EmbeddingResponse(_Wire):
    features: list[float]
    algorithm: AlgorithmReference


class DetectionResponse(_Wire):
    source_image_id: str
    bbox: BoundingBox
    inference_time: float | None = None
    algorithm: AlgorithmReference
    timestamp: datetime
    crop_image_url: str | None = None
    classifications: list[ClassificationResponse] = Field(default_factory=list)
    embeddings: list[EmbeddingResponse] | None = None


class SourceImageResponse(_Wire):
    id: str
    url: str


class AlgorithmCategoryMapResponse(_Wire):
    data: list[dict] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)
    version: str | None = None
    description: str | None = None
    uri: str | None = None


class AlgorithmConfigResponse(_Wire):
    name: str
    key: str
    description: str | None = None
    task_type: str | None = None
    version: int = 1
    version_name: str | None = None
    uri: str | None = None
    category_map: AlgorithmCategoryMapResponse | None = None


class PipelineConfigRequest(_Wire):
    example_config_param: int | None = None
    include_features: bool = False
    include_logits: bool = True
    features_for_all_detections: bool | None = None
    embedding_extractor: str | None = None


class PipelineResultsResponse(_Wire):
    pipeline: str
    algorithms: dict[str, AlgorithmConfigResponse] = Field(default_factory=dict)
    total_time: float
    source_images: list[SourceImageResponse]
    detections: list[DetectionResponse]
    config: PipelineConfigRequest = Field(default_factory=PipelineConfigRequest)


class TaskResultError(_Wire):
    error: str
    image_id: str | None = None


class TaskResult(_Wire):
    """No type field: a success and an error are told apart by which keys are present."""

    reply_subject: str | None = None
    result: PipelineResultsResponse | TaskResultError


class TaskResults(_Wire):
    results: list[TaskResult] = Field(default_factory=list)


# --- POST /jobs/{id}/result/: the answer --------------------------------------------------------------------

class ResultTaskStatus(_Wire):
    """Antenna's per-result answer ("queued"); our sandbox may say e.g. "rejected_stale" instead."""

    reply_subject: str | None = None
    status: str
    task_id: str | None = None


class ResultResponse(_Wire):
    """The real worker needs status, job_id and results_queued; `tasks` is what Antenna adds."""

    status: str
    job_id: int
    results_queued: int
    tasks: list[ResultTaskStatus] = Field(default_factory=list)


ResultPostResponse = ResultResponse

# --- builders -----------------------------------------------------------------------------------------------

SIM_DETECTOR = AlgorithmReference(name="Simulated detector", key="sim-detector")
SIM_CLASSIFIER = AlgorithmReference(name="Simulated classifier", key="sim-classifier")
LABELS = ["moth", "not moth"]


def as_task(task: Task | Mapping[str, Any]) -> Task:
    return task if isinstance(task, Task) else Task.model_validate(dict(task))


def success_result(task: Task | Mapping[str, Any], pipeline: str = "moth-detector", detections: int = 1,
                   rng: random.Random | None = None, timestamp: datetime | None = None) -> dict:
    """A PipelineResultsResponse (as JSON-ready dict) for the task's one source image, with `detections`
    fake detections of one classification each. Timestamps are naive local time by default, as the real
    worker sends them (ISO-8601 without an offset)."""
    task, rng = as_task(task), rng or random.Random(0)
    when = timestamp or datetime.now()
    found = []
    for _ in range(detections):
        x, y = rng.randint(0, 500), rng.randint(0, 500)
        score = round(rng.uniform(0.5, 0.99), 4)
        classification = ClassificationResponse(
            classification=LABELS[0], labels=LABELS, scores=[score, round(1 - score, 4)],
            logits=[round(score * 4 - 2, 4), round(2 - score * 4, 4)], inference_time=0.01,
            algorithm=SIM_CLASSIFIER, terminal=True, timestamp=when)
        found.append(DetectionResponse(
            source_image_id=task.image_id, bbox=BoundingBox(x1=x, y1=y, x2=x + 40, y2=y + 30),
            inference_time=0.01, algorithm=SIM_DETECTOR, timestamp=when, classifications=[classification]))
    response = PipelineResultsResponse(
        pipeline=pipeline, total_time=0.01, detections=found,
        source_images=[SourceImageResponse(id=task.image_id, url=task.image_url)])
    return response.model_dump(mode="json")


def error_result(task: Task | Mapping[str, Any], message: str = "failed to load image") -> dict:
    """What the real worker posts for an image it could not process."""
    image_id = task.image_id if isinstance(task, Task) else task.get("image_id")
    return TaskResultError(error=message, image_id=image_id).model_dump(mode="json")


def task_result(task: Task | Mapping[str, Any], result: dict) -> dict:
    """One entry of the `results` list: the task is identified by its reply_subject only."""
    reply_subject = task.reply_subject if isinstance(task, Task) else task.get("reply_subject")
    return {"reply_subject": reply_subject, "result": result}
