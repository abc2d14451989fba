"""/api/health, /api/health/live and /api/health/ready (api/routes/health.py):
the database and the revocation store checked; liveness depends on neither."""

from deploy.processes import free_port
from tests.helpers import assert_error


def test_health_ok(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert response.json == {
        "status": "ok",
        "checks": {"database": "ok", "revocation_store": "ok"},
    }


def test_health_ok_with_redis(make_app, redis_settings):
    response = make_app(**redis_settings).test_client().get("/api/health")
    assert response.json["checks"] == {"database": "ok", "revocation_store": "ok"}


def test_health_reports_redis_down(make_app):
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().get("/api/health")
    assert_error(response, 503, "service_unavailable")
    assert response.json["checks"] == {"database": "ok", "revocation_store": "unavailable"}


def test_health_reports_database_down(tmp_path):
    from api import create_app

    unreachable = f"sqlite:///{tmp_path}/missing/dir/app.db"
    app = create_app({"APP_CONFIG": "testing", "SQLALCHEMY_DATABASE_URI": unreachable})
    response = app.test_client().get("/api/health")
    assert_error(response, 503, "service_unavailable")
    assert response.json["checks"]["database"] == "unavailable"


def test_liveness_does_not_depend_on_backing_services(make_app):
    client = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    live = client.get("/api/health/live")
    assert live.status_code == 200
    assert live.json == {"status": "ok"}
    for path in ("/api/health/ready", "/api/health"):
        ready = client.get(path)
        assert_error(ready, 503, "service_unavailable")
        assert ready.json["checks"] == {"database": "ok", "revocation_store": "unavailable"}


def test_readiness_is_the_contracts_health(client):
    ready, health = client.get("/api/health/ready"), client.get("/api/health")
    assert ready.status_code == health.status_code == 200
    assert (
        ready.json
        == health.json
        == {
            "status": "ok",
            "checks": {"database": "ok", "revocation_store": "ok"},
        }
    )
