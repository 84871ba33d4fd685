"""deploy/k8s/ is valid offline: the built-in kinds against Kubernetes' own schemas (kubernetes-validate --strict,
which only warns on a kind it has no schema for, so any warning fails), KEDA's ScaledObject against its fields;
and the pieces fit together (names, labels, probes, the drain, the image's user and paths)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench.server import ROOT

K8S_DIR = ROOT / "deploy" / "k8s"
KUBERNETES_VALIDATE = Path(sys.executable).parent / "kubernetes-validate"
IMAGE_UID = 1034
"""The uid of the image's `bentoml` user (BentoML's default, deploy/Dockerfile.template's USER)."""

SCALED_OBJECT_FIELDS = {
    "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "idleReplicaCount",
    "minReplicaCount", "maxReplicaCount", "advanced", "triggers", "fallback",
}
SCALE_TARGET_FIELDS = {"name", "kind", "apiVersion", "envSourceContainerName"}
TRIGGER_FIELDS = {"type", "name", "metadata", "authenticationRef", "metricType", "useCachedMetrics"}
PROMETHEUS_METADATA = {
    "serverAddress", "query", "threshold", "activationThreshold", "namespace", "customHeaders", "ignoreNullValues",
    "unsafeSsl", "queryParameters", "authModes",
}
"""KEDA 2.x's ScaledObject spec and its Prometheus scaler's metadata (keda.sh/docs, scalers/prometheus)."""
BUILT_IN_KINDS = {
    ("apps/v1", "Deployment"), ("v1", "Service"), ("policy/v1", "PodDisruptionBudget"),
    ("v1", "PersistentVolumeClaim"),
}
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}
REQUESTS_IN_PROGRESS = "bentoml_service_request_in_progress"
"""BentoML's gauge of the HTTP requests a replica holds; tests/container checks the image's /metrics has it."""


def _documents() -> dict[tuple[str, str], tuple[Path, dict]]:
    found: dict[tuple[str, str], tuple[Path, dict]] = {}
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            found[(document["apiVersion"], document["kind"])] = (path, document)
    return found


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    """kind -> document; one document of each kind."""
    return {kind: document for (_, kind), (_, document) in _documents().items()}


def test_every_kind_is_built_in_or_a_crd_checked_here():
    assert set(_documents()) == BUILT_IN_KINDS | CRD_KINDS


def test_the_built_in_kinds_pass_kubernetes_validate_strictly_with_no_warning():
    files = sorted({str(path) for key, (path, _) in _documents().items() if key in BUILT_IN_KINDS})
    result = subprocess.run([str(KUBERNETES_VALIDATE), "--strict", *files], capture_output=True, text=True,
                            timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARN" not in output and "ERROR" not in output, output
    assert output.count("passed for resource") == len(files), output


def test_kubernetes_validate_strict_rejects_an_unknown_field_and_warns_on_an_unknown_kind(tmp_path: Path):
    """What the check above relies on: strict mode fails a misspelt field; a kind without a schema only warns."""
    deployment = yaml.safe_load((K8S_DIR / "deployment.yaml").read_text())
    deployment["spec"]["template"]["spec"]["terminationGracePeriod"] = 30
    (tmp_path / "misspelt.yaml").write_text(yaml.safe_dump(deployment))
    misspelt = subprocess.run([str(KUBERNETES_VALIDATE), "--strict", str(tmp_path / "misspelt.yaml")],
                              capture_output=True, text=True, timeout=120)
    assert misspelt.returncode != 0 and "terminationGracePeriod" in misspelt.stdout + misspelt.stderr
    unknown = subprocess.run([str(KUBERNETES_VALIDATE), "--strict", str(K8S_DIR / "autoscaling.yaml")],
                             capture_output=True, text=True, timeout=120)
    assert unknown.returncode == 0 and "WARN" in unknown.stdout + unknown.stderr


def test_each_crd_kind_has_only_fields_its_schema_knows(manifests: dict[str, dict]):
    scaled = manifests["ScaledObject"]
    assert set(scaled) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(scaled["spec"]) <= SCALED_OBJECT_FIELDS
    assert set(scaled["spec"]["scaleTargetRef"]) <= SCALE_TARGET_FIELDS
    for trigger in scaled["spec"]["triggers"]:
        assert set(trigger) <= TRIGGER_FIELDS and trigger["type"] == "prometheus"
        assert set(trigger["metadata"]) <= PROMETHEUS_METADATA
        assert all(isinstance(value, str) for value in trigger["metadata"].values()), "KEDA's metadata is strings"
        float(trigger["metadata"]["threshold"])


def test_it_scales_the_deployment_on_the_servers_requests_in_progress(manifests: dict[str, dict]):
    scaled, deployment, budget = manifests["ScaledObject"]["spec"], manifests["Deployment"], manifests[
        "PodDisruptionBudget"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    (trigger,) = scaled["triggers"]
    assert REQUESTS_IN_PROGRESS in trigger["metadata"]["query"]
    assert scaled["minReplicaCount"] >= 2 and budget["maxUnavailable"] == 1, "one replica serves during a drain"
    assert scaled["minReplicaCount"] <= deployment["spec"]["replicas"] <= scaled["maxReplicaCount"]


def test_service_budget_and_cache_claim_point_at_the_deployment(manifests: dict[str, dict]):
    deployment = manifests["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert {p["name"] for p in container["ports"]} >= {manifests["Service"]["spec"]["ports"][0]["targetPort"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes["hf-cache"]["persistentVolumeClaim"]["claimName"]
    assert claim == manifests["PersistentVolumeClaim"]["metadata"]["name"]


def test_the_pod_probes_health_and_runs_as_the_images_user_on_a_read_only_root(manifests: dict[str, dict]):
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == IMAGE_UID
    assert pod["securityContext"]["fsGroup"] == IMAGE_UID, "the cache volume is writable for the server"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    hf_home = next(env["value"] for env in yaml.safe_load((ROOT / "bentofile.yaml").read_text())["envs"]
                   if env["name"] == "HF_HOME")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {hf_home: "hf-cache", "/tmp": "tmp"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_grace_period_outlasts_the_servers_drain(manifests: dict[str, dict]):
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    drain_s = int(args[args.index("--timeout-graceful-shutdown") + 1])
    assert drain_s + 10 <= pod["terminationGracePeriodSeconds"], "time to unload models after the drain"
