"""Configuration from the environment; production refuses to start on weak secrets."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from config import database_url

ROOT = Path(__file__).resolve().parent.parent


def run_python(code, **env):
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "APP_", "SECRET", "ENCRYPTION_", "MAIL_"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def strong():
    return secrets.token_urlsafe(48)


def encryption_key():
    return Fernet.generate_key().decode()


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"SECRET_KEY": "short"}, "SECRET_KEY is shorter than 32 bytes"),
        ({"SECRET_KEY": "changeme-" * 5}, "SECRET_KEY looks like a placeholder"),
        ({"SECRET_KEY": "a" * 40}, "SECRET_KEY looks like a placeholder"),
        ({"JWT_SECRET_KEY": "your-secret-key-goes-here-0123456789abcdef"}, "placeholder"),
        ({"JWT_ALGORITHM": "RS256"}, "needs JWT_KEY_DIR or JWT_PRIVATE_KEY_FILE"),
        ({"JWT_ALGORITHM": "RS256", "JWT_PRIVATE_KEY_FILE": "/nope"}, "cannot be read"),
        ({"JWT_COOKIE_SAMESITE": "None", "JWT_COOKIE_SECURE": "false"}, "needs JWT_COOKIE_SECURE"),
        ({"JWT_COOKIE_SAMESITE": "Sometimes"}, "JWT_COOKIE_SAMESITE must be one of"),
    ],
)
def test_production_refuses_to_start_with_one_line(tmp_path, env, complaint):
    env = {"SECRET_KEY": strong(), "ENCRYPTION_KEYS": encryption_key(), **env}
    result = run_python("import wsgi", APP_CONFIG="production", INSTANCE_PATH=str(tmp_path), **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert complaint in lines[0]


def test_production_without_secret_key_names_it(tmp_path):
    result = run_python("import wsgi", APP_CONFIG="production", INSTANCE_PATH=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: SECRET_KEY is not set: make one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
    )


def test_production_starts_with_strong_secrets(tmp_path):
    result = run_python(
        "import wsgi; print(wsgi.app.config['JWT_COOKIE_SECURE'])",
        APP_CONFIG="production",
        SECRET_KEY=strong(),
        JWT_SECRET_KEY=strong(),
        ENCRYPTION_KEYS=encryption_key(),
        MAIL_URL="smtp://127.0.0.1:1",
        APP_URL="https://app.example.org",
        INSTANCE_PATH=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"  # Secure cookies by default in production
    assert not (tmp_path / "dev-keys").exists()


def test_production_refuses_to_start_without_app_url(tmp_path):
    # Links in mails would point at 127.0.0.1: nobody's browser opens them.
    result = run_python(
        "import wsgi",
        APP_CONFIG="production",
        SECRET_KEY=strong(),
        JWT_SECRET_KEY=strong(),
        ENCRYPTION_KEYS=encryption_key(),
        MAIL_URL="smtp://127.0.0.1:1",
        INSTANCE_PATH=str(tmp_path),
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: APP_URL must be set in production: the https:// address of the app that "
        "opens the links in mails (APP_URL + verify-email, reset-password)"
    )


@pytest.mark.parametrize("url", ["ftp://app.example", "https://app.example/?next=1", "app.example"])
def test_app_url_must_be_a_plain_http_url(tmp_path, url):
    result = run_python("import wsgi", APP_CONFIG="development", APP_URL=url,
                        INSTANCE_PATH=str(tmp_path))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: APP_URL must be an http:// or https:// URL")


def test_app_url_defaults_to_the_demo_page_outside_production(make_app):
    assert make_app().config["APP_URL"] == "http://localhost:8000/"
    assert (
        make_app(APP_URL="https://spa.example/app").config["APP_URL"] == "https://spa.example/app/"
    )


def test_environment_overrides(tmp_path):
    code = (
        "import config as c; C = c.config_from_env(); "
        "print(C.__name__, C.JWT_ACCESS_TOKEN_EXPIRES.total_seconds(), "
        "C.JWT_REFRESH_TOKEN_EXPIRES.total_seconds(), C.JWT_ISSUER, C.JWT_AUDIENCE, "
        "C.JWT_COOKIE_SECURE, C.JWT_COOKIE_SAMESITE, C.PORT, C.SQLALCHEMY_DATABASE_URI, "
        "C.SESSION_MAX_AGE.total_seconds(), C.SESSION_IDLE_TIMEOUT.total_seconds())"
    )
    result = run_python(
        code,
        APP_CONFIG="development",
        JWT_ACCESS_TOKEN_EXPIRES="120",
        JWT_REFRESH_TOKEN_EXPIRES="3600",
        JWT_ISSUER="https://auth.example.org",
        JWT_AUDIENCE="my-api",
        JWT_COOKIE_SECURE="true",
        JWT_COOKIE_SAMESITE="Strict",
        PORT="9000",
        DATABASE_URL="postgres://u:p@db/app",
        SESSION_MAX_AGE="86400",
        SESSION_IDLE_TIMEOUT="1800",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "DevelopmentConfig",
        "120.0",
        "3600.0",
        "https://auth.example.org",
        "my-api",
        "True",
        "Strict",
        "9000",
        "postgresql+psycopg://u:p@db/app",
        "86400.0",
        "1800.0",
    ]


def test_unknown_app_config_is_refused():
    result = run_python("import wsgi", APP_CONFIG="staging")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: APP_CONFIG must be one of development, testing, production, not 'staging'"
    )


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"JWT_ACCESS_TOKEN_EXPIRES": "abc"}, "JWT_ACCESS_TOKEN_EXPIRES must be a whole number"),
        ({"JWT_ACCESS_TOKEN_EXPIRES": "0"}, "JWT_ACCESS_TOKEN_EXPIRES must be a whole number"),
        ({"JWT_REFRESH_TOKEN_EXPIRES": "-5"}, "JWT_REFRESH_TOKEN_EXPIRES must be a whole number"),
        ({"JWT_REFRESH_TOKEN_EXPIRES": "9" * 30}, "JWT_REFRESH_TOKEN_EXPIRES must be a whole"),
        ({"PORT": "x"}, "PORT must be a whole number from 1 to 65535"),
        ({"DATABASE_URL": "notaurl"}, "DATABASE_URL cannot be used: Could not parse"),
        ({"DATABASE_URL": "mysql://u:pw@db/app"}, "DATABASE_URL cannot be used: No module"),
        ({"PORT": "70000"}, "PORT must be a whole number from 1 to 65535"),
        ({"TRUSTED_PROXY_HOPS": "-1"}, "TRUSTED_PROXY_HOPS must be a whole number from 0 to 10"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not 'LOUD'"),
        ({"SESSION_MAX_AGE": "0"}, "SESSION_MAX_AGE must be a whole number"),
        ({"SESSION_IDLE_TIMEOUT": "1h"}, "SESSION_IDLE_TIMEOUT must be a whole number"),
        ({"SECURITY_EVENTS_RETENTION": "-1"}, "SECURITY_EVENTS_RETENTION must be a whole"),
    ],
)
def test_unusable_numbers_stop_the_start_with_one_line(tmp_path, env, complaint):
    result = run_python("import wsgi", INSTANCE_PATH=str(tmp_path), **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {complaint}")


def test_weak_secret_key_in_development_names_the_variable(tmp_path):
    result = run_python("import wsgi", SECRET_KEY="dev", INSTANCE_PATH=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: SECRET_KEY (used as JWT_SECRET_KEY, which is not set) is shorter than 32 bytes"
    )


def test_development_without_any_secret_makes_one(tmp_path):
    result = run_python("import wsgi; print('ok')", INSTANCE_PATH=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "dev-keys" / "hmac" / "secret").stat().st_size >= 32


def test_half_made_development_key_is_explained(tmp_path):
    (tmp_path / "dev-keys" / "hmac").mkdir(parents=True)
    result = run_python("import wsgi", INSTANCE_PATH=str(tmp_path))
    assert result.returncode == 1
    assert "is incomplete: delete that folder to make a new one" in result.stderr


def test_configured_issuer_and_audience_are_enforced(make_app):
    from tests.helpers import assert_error, bearer

    issuing = make_app(JWT_ISSUER="https://a.example", JWT_AUDIENCE="api-a")
    client = issuing.test_client()
    client.post("/api/auth/register", json={"username": "bob", "password": "password123"})
    token = client.post(
        "/api/auth/login", json={"username": "bob", "password": "password123"}
    ).json["access_token"]
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    # Same secret, another audience: that API must refuse it.
    other = make_app(JWT_ISSUER="https://a.example", JWT_AUDIENCE="api-b")
    other.test_client().post(
        "/api/auth/register", json={"username": "bob", "password": "password123"}
    )
    response = other.test_client().get("/api/me", headers=bearer(token))
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql+psycopg://u:p@h:5432/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///app.db", "sqlite:///app.db"),
    ],
)
def test_database_url_uses_psycopg3(given, expected):
    assert database_url(given) == expected
