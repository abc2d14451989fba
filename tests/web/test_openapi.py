"""The OpenAPI document (api/web/openapi.py) documents every route served,
and is the one the repository keeps (docs/openapi.json)."""

import json
import re
from pathlib import Path

from api.web.openapi import SECURITY_SCHEMES, document

KEPT = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_openapi_documents_every_route(app, client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {
        (re.sub(r"\{(\w+)\}", r"<\1>", path), method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    }
    served = {
        (re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"<\1>", rule.rule), method)
        for rule in app.url_map.iter_rules()
        for method in rule.methods - {"HEAD", "OPTIONS"}
        if rule.rule.startswith(("/api/", "/.well-known/"))
        and not rule.rule.startswith(("/api/docs", "/api/openapi.json"))
    }
    assert served <= documented, served - documented
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert schemes["cookieAuth"]["in"] == "cookie"
    me = spec["paths"]["/api/me"]["get"]
    assert {"bearerAuth": []} in me["security"]
    assert "default" in me["responses"]  # the error envelope, on every operation
    assert "Error" in spec["components"]["schemas"]
    refresh = spec["paths"]["/api/auth/refresh"]["post"]
    shapes = refresh["responses"]["200"]["content"]["application/json"]["schema"]["oneOf"]
    assert {s["$ref"].rsplit("/", 1)[1] for s in shapes} == {"TokenPair", "CookieSession"}
    assert {"refreshCookieAuth": [], "csrfHeader": []} in refresh["security"]
    logout = spec["paths"]["/api/auth/logout"]["post"]
    assert {"cookieAuth": [], "csrfHeader": []} in logout["security"]  # unsafe: csrf too


def test_the_description_says_which_scheme_to_use_and_links_to_the_demo(client):
    spec = client.get("/api/openapi.json").json
    description = spec["info"]["description"]
    assert set(spec["components"]["securitySchemes"]) == set(SECURITY_SCHEMES)
    for name in SECURITY_SCHEMES:
        assert f"**`{name}`**" in description, name
    for words in ("POST /api/auth/login", "POST /api/auth/cookie/login", "POST /api/auth/refresh"):
        assert words in description, words
    assert "X-CSRF-TOKEN" in description
    assert "](/)" in description  # a Markdown link to the demo page


def test_the_served_document_is_the_one_kept_in_docs(app):
    kept = json.loads(KEPT.read_text())
    assert document(app) == kept, "the OpenAPI document changed: review it, then `make openapi`"


def test_the_snapshot_command_writes_the_served_document(app, tmp_path):
    path = tmp_path / "openapi.json"
    result = app.test_cli_runner().invoke(args=["openapi-snapshot", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(path.read_text()) == document(app)
    assert path.read_text() == json.dumps(document(app), indent=2, sort_keys=True) + "\n"


def request_strings(spec):
    """(where, schema) of every string a request takes: body fields, list items
    and query parameters, through $refs."""
    components = spec["components"]["schemas"]

    def walk(schema, where):
        if "$ref" in schema:
            yield from walk(components[schema["$ref"].rsplit("/", 1)[1]], where)
        elif schema.get("type") == "string":
            yield where, schema
        for name, item in schema.get("properties", {}).items():
            yield from walk(item, f"{where}.{name}")
        if "items" in schema:
            yield from walk(schema["items"], f"{where}[]")

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # the path's own: ids, never strings to store
                continue
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from walk(parameter["schema"], f"{where} ?{parameter['name']}")
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(content["schema"], where)


def test_no_request_string_may_hold_a_nul_character(client):
    """As the API answers (422): the schema's pattern or enum refuses NUL."""
    strings = list(request_strings(client.get("/api/openapi.json").json))
    assert any(where == "POST /api/notes.body" for where, _ in strings)
    for where, schema in strings:
        if "enum" in schema:
            assert not any("\x00" in value for value in schema["enum"]), where
        else:
            assert "pattern" in schema, where
            assert re.search(schema["pattern"], "a\x00b") is None, where


def test_each_route_s_scope_is_on_its_operation(app, client):
    # token_required(scope=...) writes it (api/web/openapi.py's document_scope):
    # the OpenAPI document says what a personal access token needs.
    from api.auth.scopes import NOTES_READ, NOTES_WRITE, PROFILE_READ

    spec = client.get("/api/openapi.json").json
    scoped = {
        (path, method): operation["x-required-scopes"]
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if "x-required-scopes" in operation
    }
    assert scoped == {
        ("/api/me", "get"): [PROFILE_READ],
        ("/api/notes", "get"): [NOTES_READ],
        ("/api/notes", "post"): [NOTES_WRITE],
        ("/api/notes/{note_id}", "get"): [NOTES_READ],
        ("/api/notes/{note_id}", "patch"): [NOTES_WRITE],
        ("/api/notes/{note_id}", "delete"): [NOTES_WRITE],
    }
    for path, method in scoped:
        operation = spec["paths"][path][method]
        assert {"personalAccessToken": []} in operation["security"]
        assert f"Scope: `{scoped[path, method][0]}`" in operation["description"]
    sessions = spec["paths"]["/api/auth/sessions"]["get"]
    assert {"personalAccessToken": []} not in sessions["security"]
