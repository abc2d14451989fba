"""Health for load balancers and orchestrators.

`/api/health/live`: the process answers (restart it when this fails); it
touches nothing else, so a database outage never gets healthy workers killed.
`/api/health/ready` (and the contract's `/api/health`): the database and the
revocation store answer too (send traffic only while this is 200).
"""

from sqlalchemy.exc import SQLAlchemyError

from api.errors import error_response
from api.json_http import Blueprint
from api.reads import read_row
from api.revocation import SELECT_ONE, StoreUnavailable, store
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
        # read_row: after a database restart, a dropped pooled connection is
        # replaced, not reported as an outage.
        "database": _check(lambda: read_row(SELECT_ONE, {})),
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
