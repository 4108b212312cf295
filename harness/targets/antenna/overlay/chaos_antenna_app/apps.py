from django.apps import AppConfig
from django.conf import settings


class ChaosAntennaConfig(AppConfig):
    name = "chaos_antenna_app"
    label = "chaos_antenna_app"

    def ready(self):
        from ami.jobs.models import Job

        # Antenna's idle rule is a class attribute, not a setting: compress it here (see chaos_antenna_settings).
        # The zombie-stream age is defined as 6 x the idle rule when the class is built; keep that ratio.
        Job.STALLED_JOBS_MAX_MINUTES = settings.CHAOS_STALLED_MINUTES
        Job.ZOMBIE_STREAMS_MAX_AGE_MINUTES = settings.CHAOS_STALLED_MINUTES * 6

        from chaos_antenna_app import races

        races.install()  # inert until a run arms one (races.py)
