"""no_server_errors, unauthorized_rejected."""

from harness.history import Op
from tests.unit.test_checks_cases import T0, call, job, reserve, snapshot, subject, verdict_case


def unauthorized(at: float, status: int | None) -> list[Op]:
    value = {"job": 1, "path": "/api/v2/jobs/1/tasks/", "method": "POST"}
    if status is None:  # no answer: the outcome is unknown
        return [Op(at, "fuzzer", "unauthorized", "invoke", value),
                Op(at + 0.1, "fuzzer", "unauthorized", "info", {**value, "error": "ReadTimeout"})]
    return call("fuzzer", "unauthorized", at, value, {"status": status}, "ok" if status < 400 else "fail")


# --- no_server_errors --------------------------------------------------------------------------------------------


@verdict_case("no_server_errors", True)
def test_answers_are_2xx_4xx_or_the_designed_503():
    bad = call("fuzzer", "post", T0 + 2, {"job": 1}, {"status": 400}, "fail")
    away = call("worker-0", "reserve", T0 + 3, {"job": 1}, {"status": 503}, "fail")
    return [*reserve(T0 + 1, [subject(1)]), *bad, *away], snapshot(job())


@verdict_case("no_server_errors", False)
def test_a_500():
    crash = call("fuzzer", "post", T0 + 2, {"job": 1, "body": "{}"}, {"status": 500}, "fail")
    return [*reserve(T0 + 1, [subject(1)]), *crash], snapshot(job())


@verdict_case("no_server_errors", None)
def test_nothing_was_answered():
    asked = Op(T0, "worker-0", "reserve", "invoke", {"job": 1})
    lost = Op(T0 + 30, "worker-0", "reserve", "info", {"job": 1, "error": "ConnectError"})
    return [asked, lost], snapshot(job())


# --- unauthorized_rejected ---------------------------------------------------------------------------------------


@verdict_case("unauthorized_rejected", True)
def test_requests_without_a_token_are_refused():
    return [*unauthorized(T0, 401), *unauthorized(T0 + 1, 403), *unauthorized(T0 + 2, None)], snapshot(job())


@verdict_case("unauthorized_rejected", False)
def test_a_request_without_a_token_is_served():
    return [*unauthorized(T0, 401), *unauthorized(T0 + 1, 200)], snapshot(job())


def other_project(at: float, status: int) -> list[Op]:
    value = {"job": 1, "path": "/api/v2/jobs/1/", "method": "GET", "as": "other-project"}
    return call("fuzzer", "unauthorized", at, value, {"status": status}, "ok" if status < 400 else "fail")


@verdict_case("unauthorized_rejected", True)
def test_a_token_of_another_project_is_refused():
    return [*unauthorized(T0, 401), *other_project(T0 + 1, 403), *other_project(T0 + 2, 404)], snapshot(job())


@verdict_case("unauthorized_rejected", False)
def test_a_token_of_another_project_is_served():
    return [*unauthorized(T0, 401), *other_project(T0 + 1, 200)], snapshot(job())


@verdict_case("unauthorized_rejected", False)
def test_a_token_of_another_project_let_past_the_scope_to_the_body_check():
    return [*other_project(T0, 400)], snapshot(job())


@verdict_case("unauthorized_rejected", None)
def test_no_request_without_a_token_was_answered():
    return unauthorized(T0, None), snapshot(job())


@verdict_case("unauthorized_rejected", None)
def test_no_request_without_a_token_was_sent():
    return reserve(T0, [subject(1)]), snapshot(job())


# --- refusals_name_the_field -------------------------------------------------------------------------------------


def refusal(at: float, error: str) -> list[Op]:
    from scenarios.fuzz import names_a_field

    value = {"job": 1, "path": "/api/v2/jobs/1/result/", "method": "POST"}
    return call("fuzzer", "fuzz", at, value, {"status": 400, "error": error, "names_field": names_a_field(error)}, "fail")


@verdict_case("refusals_name_the_field", True)
def test_every_refusal_names_its_field():
    return [*refusal(T0, "results[3].result.detections[0].classifications must be a list"),
            *refusal(T0 + 1, "JSON parse error - Expecting value"),
            *refusal(T0 + 2, "batch_size must be an integer between 1 and 1000")], snapshot(job())


@verdict_case("refusals_name_the_field", False)
def test_a_refusal_that_names_nothing():
    return [*refusal(T0, "results[0].reply_subject must be a non-empty string"), *refusal(T0 + 1, "invalid input")], \
        snapshot(job())


@verdict_case("refusals_name_the_field", None)
def test_nothing_generated_was_refused():
    return call("fuzzer", "fuzz", T0, {"job": 1}, {"status": 200}, "ok"), snapshot(job())
