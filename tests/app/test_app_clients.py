"""Clients: create, list with pagination, read, update, delete (PostgreSQL and SQLite)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _create(api: TestClient, email: str, **extra: object) -> dict:
    r = api.post("/clients", json={"name": "Ada Lovelace", "email": email, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def fields(response) -> list[list]:
    return [d["loc"] for d in response.json()["detail"]]


def test_create_returns_201_and_the_client(api: TestClient) -> None:
    body = _create(api, "ada@example.com", company="Analytical Engines")
    assert body["id"] >= 1
    assert body["email"] == "ada@example.com"
    assert body["company"] == "Analytical Engines"
    assert body["status"] == "active"
    assert body["created_at"].endswith("Z") or "+00:00" in body["created_at"]


def test_duplicate_email_is_409_case_insensitively(api: TestClient) -> None:
    _create(api, "grace@example.com")
    r = api.post("/clients", json={"name": "Grace", "email": "Grace@Example.com"})
    assert r.status_code == 409
    assert fields(r) == [["body", "email"]]


def test_bad_input_is_422_naming_the_field(api: TestClient) -> None:
    cases = [
        ({"email": "x@example.com"}, ["body", "name"]),
        ({"name": "X", "email": "not-an-email"}, ["body", "email"]),
        ({"name": "", "email": "x@example.com"}, ["body", "name"]),
        ({"name": "A\x00B", "email": "x@example.com"}, ["body", "name"]),
        ({"name": "A\nB", "email": "x@example.com"}, ["body", "name"]),
        ({"name": "X", "email": "x@example.com", "colour": "red"}, ["body", "colour"]),
        ({"name": "X" * 201, "email": "x@example.com"}, ["body", "name"]),
        ({"name": 5, "email": "x@example.com"}, ["body", "name"]),
    ]
    for payload, loc in cases:
        r = api.post("/clients", json=payload)
        assert r.status_code == 422, payload
        assert loc in fields(r), (payload, r.json())
    for raw in (b"{not json", b"\xff\xfe\x00garbage"):
        r = api.post("/clients", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422 and fields(r)[0][0] == "body", r.json()
    assert api.get("/clients").json()["total"] == 0


def test_list_paginates_in_id_order(api: TestClient) -> None:
    ids = [_create(api, f"p{i}@example.com")["id"] for i in range(7)]
    page = api.get("/clients", params={"limit": 3, "offset": 0}).json()
    assert [c["id"] for c in page["items"]] == ids[:3]
    assert (page["total"], page["limit"], page["offset"]) == (7, 3, 0)
    page = api.get("/clients", params={"limit": 3, "offset": 6}).json()
    assert [c["id"] for c in page["items"]] == ids[6:]
    assert api.get("/clients", params={"offset": 100}).json()["items"] == []
    for bad in ({"limit": 0}, {"limit": 201}, {"offset": -1}, {"limit": "x"}):
        r = api.get("/clients", params=bad)
        assert r.status_code == 422
        assert fields(r)[0] == ["query", next(iter(bad))]


def test_get_update_delete(api: TestClient) -> None:
    a = _create(api, "a@example.com")
    _create(api, "b@example.com")
    assert api.get(f"/clients/{a['id']}").json()["email"] == "a@example.com"

    r = api.patch(f"/clients/{a['id']}", json={"name": "Renamed", "company": "ACME"})
    assert r.status_code == 200
    assert (r.json()["name"], r.json()["company"]) == ("Renamed", "ACME")
    assert r.json()["updated_at"] >= a["updated_at"]
    r = api.patch(f"/clients/{a['id']}", json={"company": None})
    assert r.status_code == 200 and r.json()["company"] is None and r.json()["name"] == "Renamed"

    r = api.patch(f"/clients/{a['id']}", json={"email": "B@example.com"})
    assert r.status_code == 409 and fields(r) == [["body", "email"]]
    r = api.patch(f"/clients/{a['id']}", json={"name": None})
    assert r.status_code == 422 and "name" in r.text
    r = api.patch(f"/clients/{a['id']}", json={"email": "new@example.com"})
    assert r.status_code == 200 and r.json()["email"] == "new@example.com"

    assert api.delete(f"/clients/{a['id']}").status_code == 204
    r = api.get(f"/clients/{a['id']}")
    assert r.status_code == 404 and fields(r) == [["path", "client_id"]]
    assert api.delete(f"/clients/{a['id']}").status_code == 404
    assert api.patch(f"/clients/{a['id']}", json={"name": "x"}).status_code == 404


def test_path_ids_out_of_range_are_422_not_500(api: TestClient) -> None:
    for path in ("/clients/0", "/clients/-1", "/clients/99999999999999999999", "/clients/abc"):
        r = api.get(path)
        assert r.status_code == 422, path
        assert fields(r) == [["path", "client_id"]]
