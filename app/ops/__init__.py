"""Operations: metrics, alert checks, worker heartbeats and structured logs.

Shared by web and workers, so nothing here imports Flask or Celery; the wiring lives in
``app/web/`` (endpoints) and ``workers/observability.py`` (signals).
"""
