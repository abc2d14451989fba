"""Notes, the owner-scoped example: every route, another user's note as 404 on
every method (BOLA), allow-listed fields (mass assignment), pagination bounds."""

import json

import pytest

from tests.helpers import assert_error, bearer


@pytest.fixture
def alice(auth):
    return bearer(auth.registered_pair("alice")["access_token"])


@pytest.fixture
def bob(auth):
    return bearer(auth.registered_pair("bob")["access_token"])


def create(client, headers, title="Groceries", body="milk, eggs"):
    response = client.post("/api/notes", json={"title": title, "body": body}, headers=headers)
    assert response.status_code == 201, response.json
    return response


def test_create_read_update_delete(client, alice):
    created = create(client, alice)
    note = created.json
    assert set(note) == {"id", "title", "body", "created_at", "updated_at"}
    assert created.headers["Location"] == f"/api/notes/{note['id']}"
    assert client.get(created.headers["Location"], headers=alice).json == note
    patched = client.patch(f"/api/notes/{note['id']}", json={"title": "Shopping"}, headers=alice)
    assert patched.status_code == 200
    assert patched.json["title"] == "Shopping" and patched.json["body"] == "milk, eggs"
    assert client.delete(f"/api/notes/{note['id']}", headers=alice).status_code == 204
    assert_error(client.get(f"/api/notes/{note['id']}", headers=alice), 404, "not_found")


def test_list_only_the_callers_notes(client, alice, bob):
    create(client, alice, "alice's")
    create(client, bob, "bob's")
    listed = client.get("/api/notes", headers=alice)
    assert [n["title"] for n in listed.json] == ["alice's"]


@pytest.mark.parametrize(
    ("method", "body"), [("get", None), ("patch", {"title": "mine now"}), ("delete", None)]
)
def test_another_users_note_is_404_exactly_like_a_missing_one(client, alice, bob, method, body):
    note_id = create(client, alice).json["id"]
    kwargs = {"json": body} if body else {}
    stolen = getattr(client, method)(f"/api/notes/{note_id}", headers=bob, **kwargs)
    missing = getattr(client, method)("/api/notes/999999", headers=bob, **kwargs)
    assert_error(stolen, 404, "not_found")
    assert stolen.json == missing.json
    assert client.get(f"/api/notes/{note_id}", headers=alice).json["title"] == "Groceries"


@pytest.mark.parametrize("field", ["owner", "owner_id", "id", "created_at", "updated_at"])
def test_server_fields_cannot_be_set(client, alice, field):
    body = {"title": "t", "body": "b", field: 1}
    assert_error(client.post("/api/notes", json=body, headers=alice), 422, "validation_error")
    note_id = create(client, alice).json["id"]
    patched = client.patch(f"/api/notes/{note_id}", json={field: 2}, headers=alice)
    assert_error(patched, 422, "validation_error")
    assert field in patched.json["details"]


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "body": "b"},
        {"title": "t" * 201, "body": "b"},
        {"title": "t", "body": "b" * 10_001},
        {"title": "t"},
        {"body": "b"},
        {"title": 1, "body": "b"},
    ],
)
def test_note_validation(client, alice, body):
    assert_error(client.post("/api/notes", json=body, headers=alice), 422, "validation_error")


def test_me_cannot_be_written(client, alice):
    for method in ("put", "patch", "post", "delete"):
        response = getattr(client, method)("/api/me", json={"roles": ["admin"]}, headers=alice)
        assert_error(response, 405, "method_not_allowed")


def test_pagination(client, alice):
    for i in range(5):
        create(client, alice, f"note {i}")
    first = client.get("/api/notes?per_page=2", headers=alice)
    assert [n["title"] for n in first.json] == ["note 4", "note 3"]
    meta = json.loads(first.headers["X-Pagination"])
    assert meta == {"total": 5, "total_pages": 3, "page": 1, "per_page": 2, "next_page": 2}
    last = client.get("/api/notes?per_page=2&page=3", headers=alice)
    assert [n["title"] for n in last.json] == ["note 0"]
    beyond = client.get("/api/notes?per_page=2&page=9", headers=alice)
    assert beyond.json == []


@pytest.mark.parametrize(
    "query",
    [
        "per_page=1000000",
        "per_page=0",
        "page=-1",
        "page=0",
        "page=abc",
        "page=99999999999",
    ],
)
def test_pagination_bounds_are_422_never_5xx(client, alice, query):
    assert_error(client.get(f"/api/notes?{query}", headers=alice), 422, "validation_error")


@pytest.mark.parametrize("method", ["get", "post"])
def test_notes_need_a_token(client, method):
    assert_error(getattr(client, method)("/api/notes"), 401, "missing_token")


def test_the_collection_path_is_exactly_the_contracts(client, alice):
    assert client.get("/api/notes", headers=alice).status_code == 200  # no redirect
    assert_error(client.get("/api/notes/", headers=alice), 404, "not_found")
