"""no_leftover_queue, results_counted_once, progress_consistent."""

from tests.unit.test_checks_cases import job, queue, snapshot, verdict_case

# --- no_leftover_queue -------------------------------------------------------------------------------------------


@verdict_case("no_leftover_queue", True)
def test_a_finished_job_left_no_stream_and_no_consumer():
    return [], snapshot(job(queue=queue(stream=False)))


@verdict_case("no_leftover_queue", True)
def test_no_terminal_job_has_nothing_left_over_yet():
    return [], snapshot(job(status="STARTED", queue=queue(num_pending=2)))


@verdict_case("no_leftover_queue", False)
def test_a_revoked_job_whose_stream_is_still_there():
    return [], snapshot(job(status="REVOKED", queue=queue(consumer=False, messages=2, last_seq=2)))


@verdict_case("no_leftover_queue", None)
def test_a_finished_job_whose_nats_did_not_answer():
    found = snapshot(job())
    found["jobs"][1]["queue"] = None
    return [], found


@verdict_case("no_leftover_queue", None)
def test_no_leftover_queue_on_no_job():
    return [], snapshot()


# --- results_counted_once ----------------------------------------------------------------------------------------


@verdict_case("results_counted_once", True)
def test_every_image_counted_once():
    return [], snapshot(job(images=3))


@verdict_case("results_counted_once", True)
def test_a_failed_job_may_hold_a_result_it_never_counted():
    results = {"rows": 1, "distinct_images": 1, "duplicates": [], "subjects": []}
    return [], snapshot(job(status="FAILURE", images=3, processed=0, results=results))


@verdict_case("results_counted_once", False)
def test_a_job_that_counted_more_than_it_stored():
    results = {"rows": 1, "distinct_images": 1, "duplicates": [], "subjects": []}
    return [], snapshot(job(status="FAILURE", images=3, processed=2, results=results))


@verdict_case("results_counted_once", False)
def test_a_success_that_did_not_count_every_image():
    results = {"rows": 2, "distinct_images": 2, "duplicates": [], "subjects": []}
    return [], snapshot(job(images=3, processed=2, results=results))


def restarted_success(stored: int) -> dict:
    """A job Started again whose run left out the 8 images that already held a result (Antenna's filter)."""
    restarted = job(images=30, attempt=2, processed=22,
                    results={"rows": stored, "distinct_images": stored, "duplicates": [], "subjects": []})
    restarted["progress"]["total_images"] = 22
    return restarted


@verdict_case("results_counted_once", True)
def test_a_restart_that_left_out_images_with_results():
    return [], snapshot(restarted_success(stored=30))


@verdict_case("results_counted_once", False)
def test_a_restart_that_left_out_images_without_results():
    return [], snapshot(restarted_success(stored=22))


@verdict_case("results_counted_once", None)
def test_results_counted_once_on_no_job():
    return [], snapshot()


# --- progress_consistent -----------------------------------------------------------------------------------------


def redis(total: int, processed: int) -> dict:
    return {"exists": True, "total": total, "remaining": total - processed, "failed": 0, "processed": processed}


@verdict_case("progress_consistent", True)
def test_database_and_redis_agree_and_the_work_left_is_in_nats():
    return [], snapshot(job(status="STARTED", images=3, processed=1, redis=redis(3, 1), queue=queue(num_pending=2)))


@verdict_case("progress_consistent", True)
def test_a_finished_job_whose_redis_state_was_cleaned_up():
    return [], snapshot(job())


@verdict_case("progress_consistent", False)
def test_work_left_but_the_stream_is_gone():
    return [], snapshot(job(status="STARTED", images=3, redis=redis(3, 0), queue=queue(stream=False)))


@verdict_case("progress_consistent", False)
def test_work_left_but_nothing_pending_or_in_flight():
    return [], snapshot(job(status="STARTED", images=3, redis=redis(3, 0), queue=queue(messages=3, last_seq=3)))


@verdict_case("progress_consistent", False)
def test_database_and_redis_disagree():
    return [], snapshot(job(status="STARTED", images=3, processed=1, redis=redis(3, 2), queue=queue(num_pending=1)))


@verdict_case("progress_consistent", None)
def test_redis_did_not_answer():
    found = snapshot(job())
    found["jobs"][1]["redis"] = None
    return [], found


@verdict_case("progress_consistent", None)
def test_progress_consistent_on_no_job():
    return [], snapshot()
