"""The Prometheus rules and the Grafana dashboard speak of metrics the gateway exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.ops import metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "wa-gateway-dashboard.json"

EXPORTED = {
    m._name for m in vars(metrics).values() if hasattr(m, "_name") and hasattr(m, "_type")
} | set(metrics.STATE_METRICS)
SUFFIXES = ("_total", "_bucket", "_sum", "_count")
_NAME = re.compile(r"\bwhatsapp_[a-z_]+\b")


def referenced(expr: str) -> set[str]:
    return set(_NAME.findall(expr))


def exported(name: str) -> bool:
    return name in EXPORTED or any(
        name.endswith(s) and name.removesuffix(s) in EXPORTED for s in SUFFIXES
    )


def expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    found = [rule["expr"] for group in groups for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    found += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return found


def test_every_metric_in_the_rules_and_dashboard_is_exported():
    names = set().union(*(referenced(e) for e in expressions()))
    assert names and not {n for n in names if not exported(n)}


def test_the_rules_cover_every_alert_check():
    alert_names = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {
        "WhatsAppSendErrorRateHigh",
        "WhatsAppMessageProcessingSlow",
        "WhatsAppAIResponseSlow",
        "WhatsAppQueueBacklog",
        "WhatsAppWebhookSignatureFailures",
        "WhatsAppDeadLettersGrowing",
        "WhatsAppWorkerHeartbeatMissing",
    } <= alert_names


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_their_unit_tests_pass():
    check = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
