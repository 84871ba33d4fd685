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
