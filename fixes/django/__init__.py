"""Thin Django/Celery integration of the fixes. Everything Django-specific lives here.

Plug-in points (settings):
    FIXES              a fixes.config.FixesConfig (or a dict of its fields)
    FIXES_JOB_BINDING  dotted path of a class implementing fixes.django.binding.JobBinding
    NATS_URL, NATS_TASK_TTR, NATS_MAX_DELIVER, NATS_MAX_ACK_PENDING, NATS_RETENTION, NATS_STORAGE,
    NATS_STREAM_MAX_AGE    (Antenna's names; they define the queue layout)
    NATS_STREAM_REPLICAS   (1 by default; 3 on a 3-node JetStream cluster; NATS_URL may list every node,
                           comma-separated)
    FIXES_ADVISORY_STREAM, FIXES_ADVISORY_SUBJECTS, FIXES_ADVISORY_MAX_AGE   (the host's advisory stream)
"""
