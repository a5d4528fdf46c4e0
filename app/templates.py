"""The WhatsApp Business Account's message templates, kept in Redis.

Filled by :func:`sync` from the Graph API (``/{waba-id}/message_templates``, paged) and kept
current by Meta's template webhooks (:func:`apply_update`: ``message_template_status_update``,
``message_template_quality_update``, ``template_category_update``). A template send is checked
against what is kept (:func:`check_send`): the template must be ``APPROVED`` and each component of
the send must carry as many parameters as the template has placeholders.

Until the first sync the store is empty and knows nothing: a send naming any template passes to
Meta, which judges it. After a sync, a template the store does not hold is refused.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from app import keys
from app.errors import DeliveryError

log = logging.getLogger(__name__)

APPROVED = "APPROVED"
MARKETING = "MARKETING"

FIELD_STATUS = "message_template_status_update"
FIELD_QUALITY = "message_template_quality_update"
FIELD_CATEGORY = "template_category_update"
TEMPLATE_FIELDS = (FIELD_STATUS, FIELD_QUALITY, FIELD_CATEGORY)
"""The webhook fields (of the WhatsApp Business Account) that change a template."""

MEDIA_HEADER_FORMATS = ("IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
"""Header formats that take one parameter (the media, or the location)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class TemplateRefused(DeliveryError):
    """A template send the kept templates refuse; ``field`` names the part at fault."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Template:
    """One template in one language, as Meta describes it."""

    id: str
    name: str
    language: str
    status: str
    category: str
    components: list[dict[str, Any]] = field(default_factory=list)
    quality_score: str | None = None
    reason: str | None = None
    updated_at: float = 0.0

    @classmethod
    def from_graph(cls, raw: dict[str, Any]) -> Template:
        """A template from an item of the Graph API's ``message_templates`` list."""
        quality = raw.get("quality_score")
        return cls(
            id=str(raw.get("id", "")),
            name=str(raw.get("name", "")),
            language=str(raw.get("language", "")),
            status=str(raw.get("status", "")).upper(),
            category=str(raw.get("category", "")).upper(),
            components=[c for c in raw.get("components") or [] if isinstance(c, dict)],
            quality_score=quality.get("score") if isinstance(quality, dict) else None,
            reason=raw.get("rejected_reason"),
            updated_at=time.time(),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def expected_parameters(self) -> dict[str, int]:
        """Parameters a send must give per component: ``header``, ``body`` and ``button:<i>``
        (a URL button whose link has a placeholder); components needing none are left out."""
        expected: dict[str, int] = {}
        for component in self.components:
            kind = str(component.get("type", "")).upper()
            if kind == "HEADER":
                if str(component.get("format", "TEXT")).upper() in MEDIA_HEADER_FORMATS:
                    expected["header"] = 1
                elif count := _placeholders(component.get("text")):
                    expected["header"] = count
            elif kind == "BODY" and (count := _placeholders(component.get("text"))):
                expected["body"] = count
            elif kind == "BUTTONS":
                for index, button in enumerate(component.get("buttons") or []):
                    if not isinstance(button, dict):
                        continue
                    if str(button.get("type", "")).upper() == "URL" and _placeholders(
                        button.get("url")
                    ):
                        expected[f"button:{index}"] = 1
        return expected


def _placeholders(text: Any) -> int:
    """Distinct ``{{1}}`` or ``{{name}}`` placeholders in ``text``."""
    return len(set(_PLACEHOLDER.findall(text))) if isinstance(text, str) else 0


def given_parameters(components: list[dict[str, Any]]) -> dict[str, int]:
    """Parameters a send gives per component, keyed as :meth:`Template.expected_parameters`.
    A quick-reply or copy-code button is not counted: its parameter is the send's own choice."""
    given: dict[str, int] = {}
    for component in components:
        kind = str(component.get("type", "")).lower()
        count = len(component.get("parameters") or [])
        if kind == "button":
            if str(component.get("sub_type", "")).lower() == "url":
                given[f"button:{component.get('index')}"] = count
        elif kind in ("header", "body") and count:
            given[kind] = count
    return given


class TemplateStore:
    """Templates by name and language (hash ``keys.TEMPLATES``), and when they were synced."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client

    @staticmethod
    def _field(name: str, language: str) -> str:
        return f"{name}:{language}"

    def get(self, name: str, language: str) -> Template | None:
        raw = self.redis.hget(keys.TEMPLATES, self._field(name, language))
        return Template(**json.loads(raw)) if raw else None

    def put(self, template: Template) -> None:
        self.redis.hset(
            keys.TEMPLATES,
            self._field(template.name, template.language),
            json.dumps(template.to_dict()),
        )

    def all(self) -> list[Template]:
        templates = [Template(**json.loads(v)) for v in self.redis.hvals(keys.TEMPLATES)]
        return sorted(templates, key=lambda t: (t.name, t.language))

    def synced_at(self) -> float | None:
        """When the last sync finished; None if never (then the store knows no template)."""
        value = self.redis.get(keys.TEMPLATES_SYNCED_AT)
        return float(value) if value else None

    def replace_all(self, templates: list[Template]) -> None:
        """Keep exactly ``templates`` (one transaction: a send never sees half a sync)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.TEMPLATES)
        if templates:
            pipe.hset(
                keys.TEMPLATES,
                mapping={
                    self._field(t.name, t.language): json.dumps(t.to_dict()) for t in templates
                },
            )
        pipe.set(keys.TEMPLATES_SYNCED_AT, time.time())
        pipe.execute()


ListPage = Callable[[str | None], dict[str, Any]]
"""Fetches one page of ``message_templates`` after a cursor (None for the first)."""


def pages(list_page: ListPage, max_pages: int = 1000) -> Iterator[dict[str, Any]]:
    """Every template item, following ``paging.cursors.after`` while ``paging.next`` is given."""
    after = None
    for _ in range(max_pages):
        page = list_page(after)
        yield from (item for item in page.get("data") or [] if isinstance(item, dict))
        paging = page.get("paging") or {}
        after = (paging.get("cursors") or {}).get("after")
        if not paging.get("next") or not after:
            return
    raise RuntimeError(f"more than {max_pages} pages of templates")


def sync(store: TemplateStore, list_page: ListPage) -> list[Template]:
    """Replace the kept templates with the account's, read page by page; returns them."""
    templates = [Template.from_graph(item) for item in pages(list_page)]
    store.replace_all(templates)
    log.info("%d templates synced", len(templates))
    return templates


def apply_update(store: TemplateStore, field_name: str, value: dict[str, Any]) -> bool:
    """Apply one template webhook change; False if it names a template the store lacks (the
    next sync brings it) or is of another kind."""
    name = value.get("message_template_name")
    language = value.get("message_template_language")
    if field_name not in TEMPLATE_FIELDS or not isinstance(name, str):
        return False
    template = store.get(name, str(language))
    if template is None:
        log.info("template webhook for %s (%s), not synced yet: ignored", name, language)
        return False
    changes: dict[str, Any] = {"updated_at": time.time()}
    if field_name == FIELD_STATUS and value.get("event"):
        changes["status"] = str(value["event"]).upper()
        changes["reason"] = value.get("reason")
        if value.get("message_template_category"):
            changes["category"] = str(value["message_template_category"]).upper()
    elif field_name == FIELD_QUALITY and value.get("new_quality_score"):
        changes["quality_score"] = str(value["new_quality_score"]).upper()
    elif (
        field_name == FIELD_CATEGORY
        and value.get("new_category")
        and value.get("previous_category")
    ):
        # Only a completed change: an impending one (``correct_category``) comes 24 hours ahead.
        changes["category"] = str(value["new_category"]).upper()
    else:
        return False
    store.put(Template(**{**template.to_dict(), **changes}))
    return True


def check_send(store: TemplateStore, template: dict[str, Any]) -> Template | None:
    """Check the ``template`` object of a send against the kept template; returns it (None if
    the store was never synced). Raises :class:`TemplateRefused`."""
    if store.synced_at() is None:
        return None
    name = template.get("name")
    language = (template.get("language") or {}).get("code")
    kept = store.get(str(name), str(language))
    if kept is None:
        raise TemplateRefused(
            "template.name", f"no template {name} in {language} (see 'wa-gateway templates sync')"
        )
    if kept.status != APPROVED:
        raise TemplateRefused("template.name", f"template {name} is {kept.status}, not APPROVED")
    expected = kept.expected_parameters()
    given = given_parameters(template.get("components") or [])
    for part in sorted(set(expected) | set(given)):
        if part not in expected or part not in given or expected[part] != given[part]:
            raise TemplateRefused(
                "template.components",
                f"{part} takes {expected.get(part, 0)} parameters, {given.get(part, 0)} given",
            )
    return kept
