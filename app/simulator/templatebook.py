"""The simulated account's message templates (``PENDING`` when created, then approved, rejected,
re-rated or re-categorised by the control API) and the webhook Meta sends on each change."""

from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any

from app.templates import FIELD_QUALITY, FIELD_STATUS, Template, given_parameters
from app.whatsapp.webhook import OBJECT_WHATSAPP

CATEGORIES = ("MARKETING", "UTILITY", "AUTHENTICATION")
_NAME = re.compile(r"[a-z0-9_]{1,512}")


class TemplateBook:
    """The templates of the simulated account, in creation order, and their webhooks."""

    def __init__(self, business_account_id: str):
        self.business_account_id = business_account_id
        self._lock = threading.Lock()
        self._templates: list[dict[str, Any]] = []
        self._ids = itertools.count(1_000_000_000_000_000)

    def create(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A new ``PENDING`` template; ValueError naming what is wrong."""
        name, language = raw.get("name"), raw.get("language")
        category = str(raw.get("category", "")).upper()
        components = raw.get("components")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError("name must be lowercase letters, digits and underscores")
        if not isinstance(language, str) or not language:
            raise ValueError("language is required")
        if category not in CATEGORIES:
            raise ValueError(f"category must be one of {', '.join(CATEGORIES)}")
        if not isinstance(components, list) or not any(
            isinstance(c, dict) and str(c.get("type", "")).upper() == "BODY" for c in components
        ):
            raise ValueError("components must include a BODY")
        with self._lock:
            if any(t["name"] == name and t["language"] == language for t in self._templates):
                raise ValueError("a template with this name and language exists")
            template = {
                "id": str(next(self._ids)),
                "name": name,
                "language": language,
                "status": "PENDING",
                "category": category,
                "components": components,
            }
            self._templates.append(template)
            return dict(template)

    def page(self, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Templates from position ``after`` on, and the next position if more remain."""
        with self._lock:
            items = [dict(t) for t in self._templates[after : after + limit]]
            more = after + limit < len(self._templates)
        return items, (after + limit if more else None)

    def find(self, template_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((dict(t) for t in self._templates if t["id"] == template_id), None)

    def named(self, name: str, language: str) -> dict[str, Any] | None:
        with self._lock:
            return next(
                (
                    dict(t)
                    for t in self._templates
                    if t["name"] == name and t["language"] == language
                ),
                None,
            )

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._templates)

    def change(self, template_id: str, field: str, **changes: Any) -> dict[str, Any]:
        """Apply ``changes`` to a template and return the webhook Meta sends about it."""
        with self._lock:
            template = next(t for t in self._templates if t["id"] == template_id)
            before = dict(template)
            template.update(changes)
        value: dict[str, Any] = {
            "message_template_id": int(template_id),
            "message_template_name": before["name"],
            "message_template_language": before["language"],
        }
        if field == FIELD_STATUS:
            value = {
                "event": template["status"],
                **value,
                "reason": changes.get("rejected_reason", "NONE"),
                "message_template_category": template["category"],
            }
        elif field == FIELD_QUALITY:
            value = {
                "previous_quality_score": (before.get("quality_score") or {}).get(
                    "score", "UNKNOWN"
                ),
                "new_quality_score": template["quality_score"]["score"],
                **value,
            }
        else:
            value = {
                **value,
                "previous_category": before["category"],
                "new_category": template["category"],
            }
        return {
            "object": OBJECT_WHATSAPP,
            "entry": [
                {
                    "id": self.business_account_id,
                    "time": int(time.time()),
                    "changes": [{"value": value, "field": field}],
                }
            ],
        }


def template_refusal(book: TemplateBook, template: dict[str, Any]) -> tuple[int, str] | None:
    """Meta's error for a template send the account's templates refuse, or None. Only checked
    when the simulator holds templates (else any name is accepted, as before templates)."""
    if not book:
        return None
    kept = book.named(str(template.get("name")), str((template.get("language") or {}).get("code")))
    if kept is None:
        return 132001, "Template name does not exist in the translation"
    if kept["status"] != "APPROVED":
        return 132001, f"Template is {kept['status']}"
    expected = Template.from_graph(kept).expected_parameters()
    given = given_parameters(template.get("components") or [])
    if expected != given:
        return 132000, "Number of parameters does not match the expected number of params"
    return None
