"""Django's DiscoverRunner (the one Antenna's tests run under) with a result that records each test's outcome.

Every start and every outcome is appended as one JSON line to $CHAOS_TEST_RESULTS as it happens, so a run that
hangs or dies still says which tests finished and which one was running. Outcomes: passed, failed, error,
skipped, expected-failure, unexpected-success; a failing subtest is recorded under its own id. The test database
is created without the demo project (see setup_databases).
"""

import json
import os
import sys
import time
import traceback
import unittest

from django.test.runner import DiscoverRunner

REASON_CHARS = 300


def _reason(err) -> str:
    """The exception's last line: `AssertionError: 3 != 4`, `ConnectionRefusedError: ...`."""
    kind, value, _tb = err
    lines = "".join(traceback.format_exception_only(kind, value)).strip().splitlines()
    return (lines[-1] if lines else kind.__name__)[:REASON_CHARS]


class RecordingResult(unittest.TextTestResult):
    path = os.environ.get("CHAOS_TEST_RESULTS")

    def _write(self, entry: dict) -> None:
        if self.path:
            with open(self.path, "a") as out:
                out.write(json.dumps(entry) + "\n")

    def _record(self, test, outcome: str, err=None, reason: str = "") -> None:
        entry = {"event": "result", "id": test.id(), "outcome": outcome, "reason": reason,
                 "seconds": round(time.perf_counter() - getattr(self, "_began", time.perf_counter()), 3)}
        if err is not None:
            entry["reason"] = _reason(err)
            entry["traceback"] = self._exc_info_to_string(err, test)
        self._write(entry)

    def startTest(self, test):
        self._began = time.perf_counter()
        self._write({"event": "start", "id": test.id()})
        super().startTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, "passed")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._record(test, "failed", err)

    def addError(self, test, err):
        super().addError(test, err)
        self._record(test, "error", err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, "skipped", reason=str(reason)[:REASON_CHARS])

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, "expected-failure", reason=_reason(err))

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, "unexpected-success")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            failed = issubclass(err[0], test.failureException)
            self._record(subtest, "failed" if failed else "error", err)


class RecordingRunner(DiscoverRunner):
    def get_resultclass(self):
        return RecordingResult

    def setup_databases(self, **kwargs):
        """The test database without the demo project: ami.main's post_migrate hook builds one from MinIO and CI's
        processing service (`ml_backend`), neither of which is here, and raises without them (the harness's
        bootstrap disconnects it for the same reason)."""
        from django.apps import apps
        from django.db.models.signals import post_migrate

        try:
            from ami.tests.fixtures.signals import initialize_demo_project
        except ImportError:
            initialize_demo_project = None
        if initialize_demo_project is None or not post_migrate.disconnect(initialize_demo_project,
                                                                          sender=apps.get_app_config("main")):
            print("chaos_antenna_test_runner: initialize_demo_project is not connected (changed in this checkout?)",
                  file=sys.stderr)
        return super().setup_databases(**kwargs)
