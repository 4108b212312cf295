"""Who may touch which job: the members of the job's project, and superusers - Antenna's ObjectPermission
(a job's permissions are its project's). With PROJECT_SCOPING off any token may touch any job."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import get_object_or_404
from rest_framework.exceptions import PermissionDenied

from harness.sandbox.jobs.models import Job, Project


def unscoped(user) -> bool:
    return not settings.PROJECT_SCOPING or bool(user and user.is_superuser)


def job_of(request, job_id: int) -> Job:
    """The job, if the request's user may touch it: 404 when there is none, 403 when it is another project's."""
    job = get_object_or_404(Job.objects.select_related("pipeline"), pk=job_id)
    if not unscoped(request.user) and not _member(request.user, job):
        raise PermissionDenied(f"job {job_id} belongs to a project this token is not a member of")
    return job


def visible(request, jobs):
    """The jobs of a list the request's user may see."""
    return jobs if unscoped(request.user) else jobs.filter(project__members=request.user)


def _member(user, job: Job) -> bool:
    return Project.members.through.objects.filter(project_id=job.project_id, user_id=user.pk).exists()
