"""The wire models accept what the real worker (AMI Data Companion) accepts and reject what it rejects, and the
builders produce bodies shaped like the ones it posts."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest
from pydantic import ValidationError

from harness.workers.protocol import (
    ClassificationResponse,
    DetectionResponse,
    JobList,
    PipelineResultsResponse,
    ResultResponse,
    Task,
    TaskList,
    TaskResult,
    TaskResultError,
    TaskResults,
    TasksRequest,
    error_result,
    success_result,
    task_result,
)

TASK = {"id": "17", "image_id": "4201", "image_url": "http://media.test/4201.jpg", "reply_subject": "$JS.ACK.job_5.1"}
ANSWER = {"status": "accepted", "job_id": 5, "results_queued": 1,
          "tasks": [{"reply_subject": "$JS.ACK.job_5.1", "status": "queued", "task_id": "c-1"}]}


# --- what the server sends ----------------------------------------------------------------------------------

def test_a_paginated_job_list_parses_and_only_results_matter():
    raw = {"count": 2, "next": None, "previous": None, "results": [
        {"id": 5, "pipeline_slug": "moth-detector", "name": "ignored"}, {"id": 6, "pipeline_slug": "b"}]}
    listed = JobList.model_validate_json(json.dumps(raw), strict=True)
    assert [(job.id, job.pipeline_slug) for job in listed.results] == [(5, "moth-detector"), (6, "b")]
    assert JobList.model_validate({"results": []}).results == []


def test_a_task_list_parses_extra_fields_are_dropped_and_empty_means_drained():
    tasks = TaskList.model_validate_json(json.dumps({"tasks": [{**TASK, "attempt": 2}]}), strict=True)
    assert tasks.tasks == [Task(**TASK)] and not hasattr(tasks.tasks[0], "attempt")
    assert TaskList.model_validate({"tasks": []}).tasks == []
    assert Task.model_validate({k: v for k, v in TASK.items() if k != "reply_subject"}).reply_subject is None


@pytest.mark.parametrize("field", ["id", "image_id", "image_url", "reply_subject"])
def test_a_number_where_the_worker_expects_a_string_is_rejected(field):
    with pytest.raises(ValidationError, match="valid string"):
        TaskList.model_validate_json(json.dumps({"tasks": [{**TASK, field: 4201}]}))


def test_a_non_string_pipeline_slug_is_rejected():
    with pytest.raises(ValidationError):
        JobList.model_validate({"results": [{"id": 5, "pipeline_slug": 3}]})


def test_a_numeric_string_job_id_passes_the_real_workers_lax_check_but_not_the_strict_one():
    raw = json.dumps({"results": [{"id": "5", "pipeline_slug": "a"}]})
    assert JobList.model_validate_json(raw).results[0].id == 5  # the real worker accepts this
    with pytest.raises(ValidationError):
        JobList.model_validate_json(raw, strict=True)  # our sandbox must send a JSON number


@pytest.mark.parametrize("missing", [None, "status", "job_id", "results_queued"])
def test_the_result_answer_needs_status_job_id_and_results_queued_and_tasks_are_optional(missing):
    raw = {k: v for k, v in ANSWER.items() if k != "tasks"}
    if missing is None:
        assert ResultResponse.model_validate(raw).tasks == []
        assert ResultResponse.model_validate_json(json.dumps(ANSWER), strict=True).tasks[0].status == "queued"
    else:
        with pytest.raises(ValidationError):
            ResultResponse.model_validate({k: v for k, v in raw.items() if k != missing})


def test_a_missing_required_task_field_is_rejected():
    with pytest.raises(ValidationError):
        TaskList.model_validate({"tasks": [{k: v for k, v in TASK.items() if k != "image_url"}]})


# --- what the worker sends ----------------------------------------------------------------------------------

def test_the_reservation_body_is_just_the_batch_size():
    assert TasksRequest(batch_size=16).model_dump() == {"batch_size": 16}


@pytest.mark.parametrize("detections", [0, 1, 3])
def test_a_success_result_is_a_pipeline_response_with_one_image_and_k_detections(detections):
    result = success_result(TASK, "moth-detector", detections=detections, rng=random.Random(3))
    parsed = PipelineResultsResponse.model_validate_json(json.dumps(result), strict=True)
    assert [(image.id, image.url) for image in parsed.source_images] == [("4201", TASK["image_url"])]
    assert len(parsed.detections) == detections and parsed.pipeline == "moth-detector"
    for detection in parsed.detections:
        assert detection.source_image_id == "4201" and len(detection.classifications) == 1
        assert detection.bbox.x1 < detection.bbox.x2 and detection.bbox.y1 < detection.bbox.y2
        classification = detection.classifications[0]
        assert len(classification.labels) == len(classification.scores) == len(classification.logits)


def test_a_success_result_carries_every_field_the_real_worker_dumps():
    result = success_result(TASK)
    assert set(result) == set(PipelineResultsResponse.model_fields)
    assert set(result["detections"][0]) == set(DetectionResponse.model_fields)
    assert set(result["detections"][0]["classifications"][0]) == set(ClassificationResponse.model_fields)


def test_timestamps_are_iso_8601_and_naive_unless_given():
    result = success_result(TASK)
    stamp = datetime.fromisoformat(result["detections"][0]["timestamp"])
    assert stamp.tzinfo is None  # the real worker sends datetime.now() without an offset
    fixed = datetime.fromisoformat("2025-06-01T03:04:05+00:00")
    assert success_result(TASK, timestamp=fixed)["detections"][0]["timestamp"] == "2025-06-01T03:04:05Z"


def test_builders_take_a_dict_or_a_task_and_are_reproducible_with_a_seed():
    when = datetime(2025, 1, 1, 12, 0)
    from_dict = success_result(TASK, detections=2, rng=random.Random(9), timestamp=when)
    from_model = success_result(Task(**TASK), detections=2, rng=random.Random(9), timestamp=when)
    assert from_dict == from_model
    assert error_result(Task(**TASK), "boom") == error_result(TASK, "boom") == {"error": "boom", "image_id": "4201"}


def test_an_error_result_and_a_success_are_told_apart_by_their_keys():
    failed = TaskResult.model_validate(task_result(TASK, error_result(TASK)))
    done = TaskResult.model_validate(task_result(TASK, success_result(TASK)))
    assert isinstance(failed.result, TaskResultError) and failed.result.error == "failed to load image"
    assert isinstance(done.result, PipelineResultsResponse)
    assert failed.reply_subject == done.reply_subject == TASK["reply_subject"]
    assert TaskResultError.model_validate({"error": "no image"}).image_id is None


def test_a_results_body_survives_a_json_round_trip_unchanged():
    body = {"results": [task_result(TASK, success_result(TASK, detections=2)), task_result(TASK, error_result(TASK))]}
    parsed = TaskResults.model_validate_json(json.dumps(body))
    assert parsed.model_dump(mode="json") == body
    assert TaskResults.model_validate_json(parsed.model_dump_json()) == parsed
