"""Antenna's own settings (config.settings.local), pointed at the harness's servers, with its timings compressed.

Every override comes from a CHAOS_* environment variable, so gunicorn, the Celery worker, Celery beat and the
bootstrap script all see one configuration. A knob that is absent leaves Antenna's own value.
"""

import os
import sys
import tempfile
from datetime import timedelta
from importlib.util import find_spec
from urllib.parse import urlparse, urlunparse


def _chaos(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CHAOS_{name}", default)


def _redis_db(url: str, db: int) -> str:
    return urlunparse(urlparse(url)._replace(path=f"/{db}"))


# Antenna's base settings read these from the environment while they are imported: set them first.
os.environ.setdefault("USE_DOCKER", "no")
for _name in ("DATABASE_URL", "REDIS_URL", "NATS_URL"):  # CHAOS_DATABASE_URL -> DATABASE_URL, ...
    if _chaos(_name):
        os.environ[_name] = _chaos(_name)
if _chaos("REDIS_URL"):
    # RabbitMQ is what Antenna deploys; it is not installable here and Celery runs on Redis just as well.
    # DB 2: Antenna keeps its cache (and the async job state) in DB 0 and Celery results in DB 1.
    os.environ["CELERY_BROKER_URL"] = _redis_db(_chaos("REDIS_URL"), 2)

from config.settings.local import *  # noqa: E402, F403
from config.settings.local import INSTALLED_APPS  # noqa: E402

# Production runs with DEBUG off; local's DEBUG would also switch on the debug toolbar for every request from
# 127.0.0.1 (SQL tracing on each call), which is neither what production does nor cheap.
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]  # the harness serves on loopback only

# The checkout may be read-only and is never written to: uploads and crops go to a temp dir.
MEDIA_ROOT = _chaos("MEDIA_ROOT") or os.path.join(tempfile.gettempdir(), "chaos-antenna-media")
STATIC_ROOT = None  # nothing is collected; whitenoise would warn about a missing directory

# No S3/MinIO: the demo-project hook that needs it is disconnected by the bootstrap, and these stay unset.
S3_TEST_KEY = S3_TEST_SECRET = None

INSTALLED_APPS = [*INSTALLED_APPS, "chaos_antenna_app"]  # Job timing overrides and the control endpoints
ROOT_URLCONF = "chaos_antenna_urls"

# --- the NATS consumer: ack_wait and max_deliver ---------------------------------------------------------
# ami/ml/orchestration/nats_queue.py reads both once, at import: TASK_TTR = settings.NATS_TASK_TTR and
# NATS_MAX_DELIVER = getattr(settings, "NATS_MAX_DELIVER", 2) (no environment variable for the latter).
if _chaos("ACK_WAIT"):
    NATS_TASK_TTR = float(_chaos("ACK_WAIT"))  # seconds; base.py only parses whole seconds from the env
if _chaos("MAX_DELIVER"):
    NATS_MAX_DELIVER = int(_chaos("MAX_DELIVER"))

# --- the watchdog --------------------------------------------------------------------------------------
# Antenna's beat runs ami.jobs.tasks.jobs_health_check from django-celery-beat's DatabaseScheduler, every 15
# minutes (a crontab row named "jobs.health_check", created by migration jobs/0020). The DatabaseScheduler
# writes CELERY_BEAT_SCHEDULE entries into that table when beat starts, so the same name replaces the
# crontab with an interval (whole seconds, at least 1: IntervalSchedule.every is an integer).
HEALTH_CHECK_INTERVAL = max(1, round(float(_chaos("HEALTH_CHECK_INTERVAL", "2"))))
CELERY_BEAT_SCHEDULE = {
    "jobs.health_check": {"task": "ami.jobs.tasks.jobs_health_check",
                          "schedule": timedelta(seconds=HEALTH_CHECK_INTERVAL)},
}
# Job.STALLED_JOBS_MAX_MINUTES (10) is a class attribute, the idle time after which the health check fails a
# job's lost images and revokes a stalled job; chaos_antenna_app sets it from here when Django starts. It is
# only ever used as timedelta(minutes=...), so a fraction works: 0.1 = 6 s.
CHAOS_STALLED_MINUTES = float(_chaos("STALLED_MINUTES", "0.1"))

# --- the fixes -----------------------------------------------------------------------------------------
# chaos_antenna_fixes (the fixes' Django app and beat entry) is maintained beside this module; it is only
# looked up when the fixes are on, and a missing module is reported rather than failing the boot.
if (_chaos("FIXES", "off") or "").lower() in ("on", "1", "true"):
    if find_spec("chaos_antenna_fixes") is None:
        print("chaos_antenna_settings: CHAOS_FIXES=on but there is no chaos_antenna_fixes module; "
              "Antenna runs without the fixes", file=sys.stderr)
    else:
        import chaos_antenna_fixes

        chaos_antenna_fixes.enable(globals())
