"""deploy/bentocloud.yaml holds only keys BentoML's deployment schema knows (the schema itself drops the others
without a word, so a misspelt key deploys with defaults), and scales on the server's own concurrency."""

from __future__ import annotations

import types
import typing
from typing import Any

import attr
import pytest
import yaml
from _bentoml_sdk.service.config import ServiceConfig
from _bentoml_sdk.service.config import validate as validate_service_config
from bentoml._internal.cloud.schemas.modelschemas import DeploymentServiceConfig
from bentoml._internal.cloud.schemas.schemasv2 import CreateDeploymentSchema
from bentoml._internal.utils.cattr import bentoml_cattr
from typing_extensions import is_typeddict

from bench.server import ROOT

DEPLOYMENT_FILE = ROOT / "deploy" / "bentocloud.yaml"
CLI_ONLY_KEYS = {"cluster"}
"""Read by `bentoml deploy` before the rest is structured into CreateDeploymentSchema."""
FIELD_SCHEMAS = {(DeploymentServiceConfig, "config_overrides"): ServiceConfig}
"""Fields the deployment schema types as any mapping: a service's config_overrides is its service config."""


def _unknown_keys(value: Any, schema: Any, path: str = "") -> list[str]:
    """Paths of the keys in ``value`` that ``schema`` (an attrs class, a TypedDict, or a typing form of them) has
    no field for."""
    origin = typing.get_origin(schema)
    if origin is typing.Annotated:
        return _unknown_keys(value, typing.get_args(schema)[0], path)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(schema) if arg is not type(None)]
        return min((_unknown_keys(value, option, path) for option in options), key=len) if options else []
    if origin in (list, typing.List) and isinstance(value, list):
        (item,) = typing.get_args(schema)
        return [key for i, element in enumerate(value) for key in _unknown_keys(element, item, f"{path}[{i}]")]
    if origin in (dict, typing.Dict) and isinstance(value, dict):
        _, item = typing.get_args(schema)
        return [key for name, element in value.items() for key in _unknown_keys(element, item, f"{path}.{name}")]
    if isinstance(schema, type) and attr.has(schema) and isinstance(value, dict):
        fields = typing.get_type_hints(schema, include_extras=True)
        return _unknown_fields(
            value, {f.name: FIELD_SCHEMAS.get((schema, f.name), fields[f.name]) for f in attr.fields(schema)}, path
        )
    if is_typeddict(schema) and isinstance(value, dict):
        return _unknown_fields(value, typing.get_type_hints(schema, include_extras=True), path)
    return []


def _unknown_fields(value: dict, fields: dict[str, Any], path: str) -> list[str]:
    unknown = [f"{path}.{name}".lstrip(".") for name in value if name not in fields]
    return unknown + [key for name, element in value.items() if name in fields
                      for key in _unknown_keys(element, fields[name], f"{path}.{name}")]


def _structured(config: dict) -> CreateDeploymentSchema:
    """What `bentoml deploy -f` makes of the file (cloud/deployment.py structures it the same way)."""
    return bentoml_cattr.structure({k: v for k, v in config.items() if k not in CLI_ONLY_KEYS},
                                   CreateDeploymentSchema)


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(DEPLOYMENT_FILE.read_text())


def test_every_key_is_one_the_deployment_schema_knows(config: dict):
    assert _unknown_keys({k: v for k, v in config.items() if k not in CLI_ONLY_KEYS}, CreateDeploymentSchema) == []
    for service in config["services"].values():
        validate_service_config(service["config_overrides"])


def test_the_check_catches_misspelt_keys_that_the_schema_itself_drops(config: dict):
    service = dict(config["services"]["speech-to-text"])
    service["instance_typ"] = service.pop("instance_type")
    service["scalling"] = service.pop("scaling")
    service["config_overrides"] = {"traffic": {"concurency": 8}}
    misspelt = {**config, "acess_authorization": True, "services": {"speech-to-text": service}}

    deployed = _structured(misspelt).services["speech-to-text"]
    assert deployed.instance_type is None and deployed.scaling is None, "BentoML drops them without an error"
    assert sorted(_unknown_keys(misspelt, CreateDeploymentSchema)) == [
        "acess_authorization",
        "services.speech-to-text.config_overrides.traffic.concurency",
        "services.speech-to-text.instance_typ",
        "services.speech-to-text.scalling",
    ]


def test_the_deployment_is_the_services_gpu_image_with_the_token_from_a_secret(config: dict):
    structured = _structured(config)
    assert structured.bento.startswith("speech-to-text:") and "hf-token" in structured.secrets
    assert list(structured.services) == ["speech-to-text"], "the entry service's name in service.py"
    service = structured.services["speech-to-text"]
    assert isinstance(service, DeploymentServiceConfig) and service.instance_type.startswith("gpu.")
    assert not any(env.name == "HF_TOKEN" for env in structured.envs or []), "the token comes from a secret"


def test_it_scales_on_concurrency_and_keeps_one_replica_warm(config: dict):
    """Without traffic.concurrency BentoCloud scales on CPU use, which stays low while a GPU decodes; a replica
    started from zero pulls the image and loads its models before it answers, so one stays up."""
    service = _structured(config).services["speech-to-text"]
    assert service.scaling.min_replicas == 1 and service.scaling.max_replicas >= 2
    traffic = typing.cast(ServiceConfig, service.config_overrides)["traffic"]
    assert traffic["concurrency"] == 8

