import json

from server.edge.error_middleware import openai_error_from


def test_bentoml_validation_error_becomes_openai_shape():
    body = json.dumps(
        {"error": "1 validation error for Input", "detail": [{"loc": ["task"], "msg": "Input should be 'transcribe' or 'translate'"}]}
    ).encode()
    error = json.loads(openai_error_from(400, body))["error"]
    assert error == {
        "message": "Invalid value for 'task': Input should be 'transcribe' or 'translate'",
        "type": "invalid_request_error",
        "param": "task",
        "code": "invalid_value",
    }


def test_list_wrapped_and_plain_bodies():
    assert json.loads(openai_error_from(404, b'[{"error": "not here"}]'))["error"]["message"] == "not here"
    server = json.loads(openai_error_from(500, b"oops"))["error"]
    assert server["type"] == "server_error" and server["message"] == "oops"


def test_openai_bodies_pass_through():
    body = json.dumps({"error": {"message": "m", "type": "t", "param": None, "code": None}}).encode()
    assert openai_error_from(404, body) is None


def test_validation_messages_name_the_parameter():
    from server.edge.errors import validation_message

    assert validation_message([{"loc": ["body", "file"], "msg": "Field required", "type": "missing"}]) == (
        "Missing required parameter: 'file'.", "file")
    assert validation_message([{"loc": ["body", "temperature"], "msg": "not a number", "type": "float_parsing"}]) == (
        "Invalid value for 'temperature': not a number", "temperature")
    assert validation_message([]) == ("Invalid request: invalid input", None)
    truncated = {"type": "json_invalid", "loc": ("body", 36), "msg": "JSON decode error",
                 "ctx": {"error": "Expecting value"}}
    assert validation_message([truncated]) == ("The JSON is not valid: Expecting value.", None)  # not param "36"


def test_a_429_or_503_that_says_nothing_of_when_to_retry_gets_a_retry_after():
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from server.edge.error_middleware import OpenAIErrorMiddleware

    async def not_ready(_):  # what BentoML's /readyz does while the models load
        raise HTTPException(503, "Service is not ready because .__is_ready__() returns False.")

    async def busy_with_its_own(_):
        return JSONResponse({"error": {"message": "busy", "type": "t", "param": None, "code": None}}, 429,
                            headers={"Retry-After": "7"})

    async def missing(_):
        return PlainTextResponse("no", 404)

    app = Starlette(routes=[Route("/readyz", not_ready), Route("/busy", busy_with_its_own), Route("/missing", missing)])
    client = TestClient(OpenAIErrorMiddleware(app))
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.headers["retry-after"] == "1"
    assert ready.json()["error"]["message"].startswith("Service is not ready")
    assert client.get("/busy").headers.get_list("retry-after") == ["7"]  # its own, not a second one
    assert "retry-after" not in client.get("/missing").headers
