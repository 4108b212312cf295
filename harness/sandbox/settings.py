"""Settings of the sandbox Django project that mirrors Antenna's async_api job system.

Everything that a test or `chaos up` varies comes from CHAOS_* environment variables, so the web
server, the Celery worker and Celery beat started by the harness all see the same configuration.
"""

import os
from urllib.parse import urlparse

from fixes.config import FixesConfig
from fixes.django.schedule import beat_schedule


def _env(name: str, default: str) -> str:
    return os.environ.get(f"CHAOS_{name}", default)


def _database(url: str) -> dict:
    if url.startswith("sqlite"):
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": url.split("///", 1)[-1] or ":memory:"}
    u = urlparse(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": u.path.lstrip("/") or "postgres",
        "USER": u.username or "postgres",
        "PASSWORD": u.password or "",
        "HOST": u.hostname or "127.0.0.1",
        "PORT": str(u.port or 5432),
        "CONN_MAX_AGE": 60,
    }


SECRET_KEY = _env("SECRET_KEY", "sandbox-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "harness.sandbox.urls"
WSGI_APPLICATION = "harness.sandbox.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
APPEND_SLASH = False  # workers POST to exact paths; a redirect would turn a POST into a GET

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
    "harness.sandbox.jobs",
    "fixes.django",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {"default": _database(_env("DATABASE_URL", "sqlite:///:memory:"))}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication",
                                       "harness.sandbox.jobs.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "harness.sandbox.jobs.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# --- Antenna's names and defaults ---------------------------------------------------------------
NATS_URL = _env("NATS_URL", "nats://127.0.0.1:4222")
REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_TASK_TTR = float(_env("ACK_WAIT", "300"))  # ack_wait, seconds
NATS_MAX_DELIVER = int(_env("MAX_DELIVER", "2"))
NATS_MAX_ACK_PENDING = int(_env("MAX_ACK_PENDING", "1000"))
NATS_RETENTION = _env("RETENTION", "limits")  # limits (Antenna) | workqueue
NATS_STORAGE = _env("STORAGE", "file")  # file | memory
NATS_STREAM_MAX_AGE = float(_env("STREAM_MAX_AGE", "86400"))
NATS_STREAM_REPLICAS = int(_env("STREAM_REPLICAS", "1"))  # 3 on a 3-node cluster (CHAOS_NATS=cluster3)
TASKS_FETCH_TIMEOUT = float(_env("FETCH_TIMEOUT", "0.5"))  # seconds a /tasks/ call waits on NATS
# a larger request body: 413 (DRF reads JSON bodies through request.body, which enforces this)
DATA_UPLOAD_MAX_MEMORY_SIZE = int(_env("MAX_BODY_BYTES", str(16 * 1024 * 1024)))
WORKER_MAX_RESULTS_PER_POST = int(_env("MAX_RESULTS_PER_POST", "1000"))  # more results in one POST: 413
PROJECT_SCOPING = _env("PROJECT_SCOPING", "on") != "off"  # off: any token may touch any job (the old hole)
RUN_JOB_RETRIES = int(_env("RUN_JOB_RETRIES", "30"))  # run_job retries a publish NATS refused, RETRY_DELAY apart

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4

# --- the fixes: all on or all off with CHAOS_FIXES, each one overridable (CHAOS_FIX_<NAME>=0|1) ---
FIXES = FixesConfig.from_env(os.environ, prefix="CHAOS_")
FIXES_JOB_BINDING = "harness.sandbox.jobs.binding.SandboxJobs"
CELERY_BEAT_SCHEDULE = beat_schedule(FIXES)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _env("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
