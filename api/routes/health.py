"""Health for load balancers and orchestrators.

`/api/health/live`: the process answers (restart it when this fails); it
touches nothing else, so a database outage never gets healthy workers killed.
`/api/health/ready` (and the contract's `/api/health`): the database and the
revocation store answer too (send traffic only while this is 200).
"""

from flask import jsonify
from sqlalchemy.exc import SQLAlchemyError

from api import database
from api.auth.revocation import StoreUnavailable, store
from api.routes import groups
from api.schemas import HealthSchema, LivenessSchema
from api.web.errors import error_response


@groups.health.get("/api/health/live")
@groups.health.response(200, LivenessSchema)
def live():
    """Liveness: 200 while the process serves requests; checks nothing else."""
    # The answer never changes: the schema documents it, and is not run on
    # each of the probes a load balancer sends (a Response passes through).
    return jsonify(status="ok")


@groups.health.get("/api/health")
@groups.health.get("/api/health/ready")
@groups.health.response(200, HealthSchema)
def health():
    """Readiness: 200 when the database and the revocation store answer, else 503."""
    checks = {
        # After a database restart, a dropped pooled connection is replaced,
        # not reported as an outage (api/database.py).
        "database": _check(database.ping),
        "revocation_store": _check(store().ping),
    }
    if "unavailable" in checks.values():
        message = "A backing service is unavailable."
        extra = {"status": "unavailable", "checks": checks}
        return error_response(503, "service_unavailable", message, extra=extra)
    return {"status": "ok", "checks": checks}


def _check(probe):
    try:
        probe()
    except (StoreUnavailable, SQLAlchemyError):
        return "unavailable"
    return "ok"
