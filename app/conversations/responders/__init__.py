"""Responders turn a customer's message, with its context, into the business's reply.

One small interface (``interface``), three backends chosen by ``RESPONDER_BACKEND``: offline
rules (``rules``), an OpenAI-compatible chat API (``openai_compatible``) and an agent webhook
(``agent_webhook``), built by ``factory.build_responder``. ``service.ReplyService`` stands around
whichever is configured: it caches AI replies (``cache``), bounds the wait, and answers with the
fallback reply when the backend is slow or down.
"""
