"""Files and batches belong to the API key that made them: another key sees none of them (404 as for an id that
does not exist), lists none, cannot cancel them, and cannot name their files in its own batch's lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.testclient import TestClient

from server.edge.auth import ApiKeyMiddleware

TRANSCRIPTIONS = "/v1/audio/transcriptions"


@pytest.fixture
def keyed(v1_app: FastAPI) -> Iterator[Callable[[str], TestClient]]:
    app = Starlette(routes=[Mount("/v1", app=v1_app)],
                    middleware=[Middleware(ApiKeyMiddleware, keys=["key-a", "key-b"])])
    with TestClient(app) as client:
        yield lambda key: _with_key(client, key)


def _with_key(client: TestClient, key: str) -> TestClient:
    client.headers["Authorization"] = f"Bearer {key}"
    return client


def test_another_keys_files_and_batches_are_not_found(keyed, wav_bytes, run_batch):
    a = keyed("key-a")
    audio = a.post("/v1/files", files={"file": ("a.wav", wav_bytes(0.5))}, data={"purpose": "user_data"}).json()
    line = {"custom_id": "x", "method": "POST", "url": TRANSCRIPTIONS, "body": {"file": audio["id"]}}
    batch_input = a.post("/v1/files", files={"file": ("in.jsonl", json.dumps(line).encode())},
                         data={"purpose": "batch"}).json()
    batch = a.post("/v1/batches", json={"input_file_id": batch_input["id"], "endpoint": TRANSCRIPTIONS,
                                        "completion_window": "24h"}).json()
    run_batch()
    done = a.get(f"/v1/batches/{batch['id']}").json()
    assert done["status"] == "completed"
    assert a.get(f"/v1/files/{done['output_file_id']}/content").status_code == 200

    b = keyed("key-b")
    for path in (f"/v1/files/{audio['id']}", f"/v1/files/{audio['id']}/content", f"/v1/batches/{batch['id']}",
                 f"/v1/files/{done['output_file_id']}/content"):
        assert b.get(path).status_code == 404, path
    assert b.post(f"/v1/batches/{batch['id']}/cancel").status_code == 404
    assert b.delete(f"/v1/files/{audio['id']}").status_code == 404
    assert b.get("/v1/files").json()["data"] == [] and b.get("/v1/batches").json()["data"] == []
    taken = b.post("/v1/batches", json={"input_file_id": batch_input["id"], "endpoint": TRANSCRIPTIONS,
                                        "completion_window": "24h"})
    assert taken.status_code == 404
    own_input = b.post("/v1/files", files={"file": ("in.jsonl", json.dumps(line).encode())},
                       data={"purpose": "batch"}).json()
    borrowing = b.post("/v1/batches", json={"input_file_id": own_input["id"], "endpoint": TRANSCRIPTIONS,
                                            "completion_window": "24h"}).json()
    run_batch()
    failed = b.get(f"/v1/batches/{borrowing['id']}").json()
    assert failed["status"] == "failed" and failed["errors"]["data"][0]["param"] == "body.file"

    a = keyed("key-a")
    assert {f["id"] for f in a.get("/v1/files").json()["data"]} == {audio["id"], batch_input["id"],
                                                                     done["output_file_id"]}
    assert [x["id"] for x in a.get("/v1/batches").json()["data"]] == [batch["id"]]
