"""A Django project that mirrors Antenna's async_api job system (models, worker API, Celery tasks)."""

from harness.sandbox.celery_app import app as celery_app

__all__ = ["celery_app"]
