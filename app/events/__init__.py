"""Events to the business's own systems: subscriptions (:mod:`app.events.subscriptions`) and
signed, retried deliveries (:mod:`app.events.delivery`). See docs/EVENTS.md."""
