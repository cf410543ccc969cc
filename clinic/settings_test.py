"""Settings for the test suite: the development defaults (no HTTPS redirect, a local secret key)
with a fast password hasher. Everything else, the database and Redis above all, still comes from
the environment, so CI runs the same suite against PostgreSQL and Redis."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")

from clinic.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Tasks run in the calling process unless an integration test starts a real worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
