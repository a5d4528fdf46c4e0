"""The one Celery app (``celery -A workers``) and the wiring of each worker process."""

from workers.celery_app import app

__all__ = ["app"]
