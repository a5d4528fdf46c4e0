"""wa-gateway: a WhatsApp Business Cloud API gateway.

The ``app`` package holds the Flask receiver (``app.web``) and the domain code shared by the web
process and the Celery workers. Only ``app.web`` imports Flask; nothing under ``app`` imports Celery.
"""

__version__ = "0.1.0"
