"""Liveness: the process answers."""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """200 while the web process can answer at all."""
    return jsonify({"status": "ok"})
