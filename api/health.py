"""Health for load balancers and orchestrators.

`/api/health/live`: the process answers (restart it when this fails); it
touches nothing else, so a database outage never gets healthy workers killed.
`/api/health/ready` (and the contract's `/api/health`): the database and the
revocation store answer too (send traffic only while this is 200).
"""

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.errors import error_response
from api.extensions import db
from api.json_http import Blueprint
from api.revocation import StoreUnavailable, store
from api.schemas import HealthSchema, LivenessSchema

blp = Blueprint("health", __name__, url_prefix="/api", description="Health")


@blp.get("/health/live")
@blp.response(200, LivenessSchema)
def live():
    """Liveness: 200 while the process serves requests; checks nothing else."""
    return {"status": "ok"}


@blp.get("/health")
@blp.get("/health/ready")
@blp.response(200, HealthSchema)
def health():
    """Readiness: 200 when the database and the revocation store answer, else 503."""
    checks = {
        "database": _check(lambda: db.session.execute(text("SELECT 1"))),
        "revocation_store": _check(store().ping),
    }
    if "unavailable" in checks.values():
        db.session.rollback()
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
