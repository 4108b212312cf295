"""The inline check in this process's ORM and NATS bridge: how often an empty /tasks/ call looks at the queue."""

import dataclasses

import pytest

from tests.integration.wire import started_job

pytestmark = pytest.mark.integration


@pytest.mark.stack(fixes="on", FIX_SWEEP="0")
@pytest.mark.parametrize(("recheck", "looks"), [(30.0, 1), (0.0, 3)])
def test_a_job_found_healthy_is_looked_at_again_only_after_inline_recheck(sandbox_db, monkeypatch, recheck, looks):
    from django.conf import settings

    from fixes.django import reaper, runtime
    from fixes.jetstream import JobQueue

    settings.FIXES = dataclasses.replace(settings.FIXES, inline_recheck=recheck)  # restored when sandbox_db ends
    job = runtime.binding().model.objects.get(pk=started_job(sandbox_db, images=2))  # 2 tasks pending: healthy
    looked, real = [], JobQueue.snapshot

    async def snapshot(self, *args, **kwargs):
        looked.append(args[0])
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(JobQueue, "snapshot", snapshot)
    assert [reaper.check_inline(job) for _ in range(3)] == [None] * 3
    assert looked == [job.pk] * looks
