"""Health endpoints for load balancers: /health (the process answers) and /health/ready
(the durable and short-lived stores answer too)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from idp.runtime import runtime
from idp.store.ephemeral import StoreUnavailable
from idp.store.models import db

bp = Blueprint("health", __name__)


@bp.get("/health")
def live() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/health/ready")
def ready() -> Response:
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
        checks["database"] = "ok"
    except Exception:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks["database"] = "unavailable"
    try:
        runtime().store.ping()
        checks["store"] = "ok"
    except StoreUnavailable:
        checks["store"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    response = jsonify({"status": "ok" if ok else "unavailable", "checks": checks})
    response.status_code = 200 if ok else 503
    return response
