"""Tasks belong to clients."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _client(api: TestClient, email: str) -> int:
    return api.post("/clients", json={"name": "C", "email": email}).json()["id"]


def test_create_list_filter_and_update(api: TestClient) -> None:
    a, b = _client(api, "a@example.com"), _client(api, "b@example.com")
    r = api.post("/tasks", json={"client_id": a, "title": "Call", "due_at": "2030-01-02T03:04:05Z"})
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["due_at"].startswith("2030-01-02T03:04:05")
    assert task["done"] is False
    api.post("/tasks", json={"client_id": a, "title": "Follow up"})
    api.post("/tasks", json={"client_id": b, "title": "Intro"})

    only_a = api.get("/tasks", params={"client_id": a}).json()
    assert [t["title"] for t in only_a["items"]] == ["Call", "Follow up"]
    assert only_a["total"] == 2
    everything = api.get("/tasks", params={"limit": 2}).json()
    assert everything["total"] == 3 and len(everything["items"]) == 2

    r = api.patch(f"/tasks/{task['id']}", json={"done": True, "title": "Called"})
    assert r.status_code == 200
    assert (r.json()["done"], r.json()["title"]) == (True, "Called")
    assert api.get(f"/tasks/{task['id']}").json()["done"] is True
    r = api.patch(f"/tasks/{task['id']}", json={"due_at": "2031-05-05T10:00:00+02:00"})
    assert r.json()["due_at"].startswith("2031-05-05T08:00:00")


def test_unknown_client_is_404_naming_client_id(api: TestClient) -> None:
    r = api.post("/tasks", json={"client_id": 4242, "title": "x"})
    assert r.status_code == 404
    assert r.json()["detail"][0]["loc"] == ["body", "client_id"]


def test_bad_task_input_is_4xx_naming_the_field(api: TestClient) -> None:
    a = _client(api, "a@example.com")
    for payload, field in [
        ({"client_id": a}, "title"),
        ({"client_id": a, "title": "x", "due_at": "tomorrow"}, "due_at"),
        ({"client_id": a, "title": "x", "due_at": "2030-01-01T00:00:00"}, "due_at"),  # no offset
        ({"client_id": 0, "title": "x"}, "client_id"),
        ({"client_id": 2**40, "title": "x"}, "client_id"),
    ]:
        r = api.post("/tasks", json=payload)
        assert r.status_code == 422, payload
        assert ["body", field] in [d["loc"] for d in r.json()["detail"]], r.json()
    task = api.post("/tasks", json={"client_id": a, "title": "x"}).json()
    r = api.patch(f"/tasks/{task['id']}", json={"done": None})
    assert r.status_code == 422 and "done" in r.text
    assert api.patch("/tasks/999", json={"done": True}).status_code == 404
    assert api.get("/tasks/999").status_code == 404


def test_deleting_a_client_deletes_its_tasks(api: TestClient) -> None:
    a = _client(api, "a@example.com")
    t = api.post("/tasks", json={"client_id": a, "title": "x"}).json()
    assert api.delete(f"/clients/{a}").status_code == 204
    assert api.get(f"/tasks/{t['id']}").status_code == 404
