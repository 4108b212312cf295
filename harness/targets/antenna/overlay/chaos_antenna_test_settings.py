"""Settings for Antenna's own test suites: `config.settings.local`, as Antenna's CI runs `manage.py test`.

Antenna's CI (docker-compose.ci.yml, .envs/.ci/.django) runs `python manage.py test` with
DJANGO_SETTINGS_MODULE=config.settings.local and real PostgreSQL, Redis, NATS, RabbitMQ and MinIO. Here the same
settings module is imported as it is; the environment variables it reads (DATABASE_URL, REDIS_URL, NATS_URL,
CELERY_BROKER_URL, MINIO_*) point it at the harness's servers (harness/targets/antenna/suite.py sets them). Only
two things differ, both so that nothing is written into the checkout and results can be read back:

* MEDIA_ROOT goes to a temp dir (Antenna's is `ami/media` inside the checkout);
* the test runner is Django's DiscoverRunner with a result that records every test's outcome
  (chaos_antenna_test_runner).

With the fixes' PR applied, its settings (in config/settings/base.py) switch the fixes on; nothing is added here.
"""

import os
import tempfile

os.environ.setdefault("USE_DOCKER", "no")

from config.settings.local import *  # noqa: E402, F403

MEDIA_ROOT = os.environ.get("CHAOS_MEDIA_ROOT") or os.path.join(tempfile.gettempdir(), "chaos-antenna-test-media")
TEST_RUNNER = "chaos_antenna_test_runner.RecordingRunner"
