"""Transition hooks: any save that moves a job into a terminal state cleans up its queue.

Works for every path that saves the model (cancel endpoint, watchdog, admin, reaper) without
changes to the model: post_init remembers the loaded status, post_save compares.
"""

from django.db import transaction
from django.db.models.signals import post_init, post_save

from fixes.django import runtime

_STATUS = "_fixes_loaded_status"


def _remember(sender, instance, **kwargs):
    instance.__dict__[_STATUS] = instance.__dict__.get("status")


def _on_save(sender, instance, created, **kwargs):
    old, new = instance.__dict__.get(_STATUS), instance.status
    instance.__dict__[_STATUS] = new
    binding = runtime.binding()
    if old == new or new not in binding.terminal_states or not runtime.config().cleanup_on_terminal:
        return
    from fixes.django.cleanup import cleanup_job

    job_id, attempt = instance.pk, binding.attempt(instance)
    transaction.on_commit(lambda: cleanup_job(job_id, attempt, reason=f"{old} -> {new}"))


def connect(model) -> None:
    post_init.connect(_remember, sender=model, dispatch_uid="fixes-remember-status")
    post_save.connect(_on_save, sender=model, dispatch_uid="fixes-transition-cleanup")
