"""WhatsApp Cloud API: the Graph client, webhook payload types, errors and signatures.

Shared by the web process and the workers; imports neither Flask nor Celery.
"""
