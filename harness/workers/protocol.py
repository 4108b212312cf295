"""The worker wire format, as a real Antenna worker parses it (pydantic v2, strict types).

An int where the worker expects a string is rejected, extra fields are ignored — exactly what the
AMI Data Companion's client does, so a response that validates here is one it accepts.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class JobListItem(_Wire):
    id: StrictInt
    pipeline_slug: StrictStr


class JobList(_Wire):
    results: list[JobListItem]


class Task(_Wire):
    id: StrictStr
    image_id: StrictStr
    image_url: StrictStr
    reply_subject: StrictStr


class TaskList(_Wire):
    tasks: list[Task]


class ResultTaskStatus(_Wire):
    reply_subject: StrictStr
    status: StrictStr
    task_id: StrictStr | None = None


class ResultResponse(_Wire):
    status: StrictStr
    job_id: StrictInt
    results_queued: StrictInt
    tasks: list[ResultTaskStatus] = []


def success_result(task: dict, pipeline: str = "moth-detector", detections: int = 1,
                   rng: random.Random | None = None) -> dict:
    """A PipelineResultsResponse for one source image with `detections` detections of one class each."""
    rng = rng or random.Random(0)
    now = datetime.now(UTC).isoformat()
    algorithm = {"name": "Sim detector", "key": "sim-detector"}
    found = []
    for _ in range(detections):
        x, y = rng.randint(0, 500), rng.randint(0, 500)
        found.append({
            "source_image_id": task["image_id"], "bbox": {"x1": x, "y1": y, "x2": x + 40, "y2": y + 30},
            "inference_time": 0.01, "algorithm": algorithm, "timestamp": now, "crop_image_url": None,
            "classifications": [{"classification": "moth", "labels": ["moth", "not moth"], "scores": [0.9, 0.1],
                                 "logits": [2.2, -2.2], "inference_time": 0.01,
                                 "algorithm": {"name": "Sim classifier", "key": "sim-classifier"},
                                 "terminal": True, "timestamp": now}],
        })
    return {"pipeline": pipeline, "algorithms": {}, "total_time": 0.01, "config": {},
            "source_images": [{"id": task["image_id"], "url": task["image_url"]}], "detections": found}


def error_result(task: dict, message: str) -> dict:
    return {"error": message, "image_id": task.get("image_id")}
