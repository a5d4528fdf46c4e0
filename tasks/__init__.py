"""Thin Celery tasks: JSON-safe arguments in, plain domain functions do the work."""
