"""The Celery app: configured from Django's settings (CELERY_*), tasks found in each app's
tasks.py. Redis is the broker where REDIS_URL is set; otherwise kombu's filesystem transport
under var/ lets a development machine run a real worker with no service at all."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

app = Celery("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
