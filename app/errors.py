"""Placeholder root until the error tree lands."""

from __future__ import annotations


class ConfigError(Exception):
    """The environment does not describe a runnable gateway; the message names each variable."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
