"""The README is the door: two set-up commands first, under 15 KB; one configuration table,
in docs/CONFIGURATION.md."""

from __future__ import annotations

import re

from app.config import Settings, env_name
from tests.stack import ROOT

README = (ROOT / "README.md").read_text()


def test_the_readme_stays_a_door():
    assert len(README.encode()) < 15 * 1024


def test_it_opens_with_the_two_commands_and_ci_runs_the_second():
    block = re.match(r"# [^\n]+\n+```sh\n(.*?)\n```", README, re.S)
    assert block is not None
    run, test = block.group(1).splitlines()
    assert run.endswith("wa-gateway run")
    assert test in (ROOT / ".ci" / "run").read_text()


def test_the_configuration_table_lists_every_setting():
    """One table documents the configuration: a setting added without a row fails here."""
    table = (ROOT / "docs" / "CONFIGURATION.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", table, re.MULTILINE))
    settings = {env_name(name) for name in Settings.model_fields}
    assert settings - documented == set()
    process_managers = (ROOT / "Procfile").read_text() + (ROOT / "gunicorn.conf.py").read_text()
    process_managers += (ROOT / "app" / "ops" / "flower.py").read_text()
    assert {name for name in documented - settings if name not in process_managers} == set()
