from django.apps import AppConfig
from django.conf import settings


class FixesAppConfig(AppConfig):
    name = "fixes.django"
    label = "fixes"
    verbose_name = "Job queue fixes"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        if getattr(settings, "FIXES_JOB_BINDING", None):
            from fixes.django import runtime, signals

            signals.connect(runtime.binding().model)
