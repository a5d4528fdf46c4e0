"""Outbound delivery: accepting messages (``intake``), their records (``messages``), sending them
(``sender``) within rate limits (``ratelimit``) and the 24-hour window (``window``), retrying
(``retry``), idempotency keys (``idempotency``) and what could not be sent (``dead_letters``)."""
