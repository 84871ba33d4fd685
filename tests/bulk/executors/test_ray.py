"""The ray executor's plumbing without a cluster: the actors' resources and environment (the traps of running Ray on
one machine), the actor's batches through the inprocess executor with fake engines, the columns an outcome travels
in. A real local Ray under faults: tests/e2e/test_bulk_ray_e2e.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bulk.__main__ import make_executor, parser
from bulk.executors.base import Done, Failed, GaveUp
from bulk.executors.ray import (
    BATCH_ITEMS,
    MAX_ATTEMPTS_VARIABLE,
    BulkTranscriber,
    RayExecutor,
    RayOptions,
    actor_cpus,
    actor_options,
    import_ray,
    outcome_from_row,
    outcome_row,
    ray_environment,
)
from bulk.manifest import Item
from tests.bulk.executors.test_inprocess import tone_file
from tests.fakes import FakeModels
from tests.support.transcribers import chat_transcriber

ROOT = Path(__file__).resolve().parents[3]


def test_actors_leave_cpu_for_ray_datas_own_tasks():
    """ray #44687: a pool holding every CPU of the cluster starves Ray Data's read and split tasks, and the run
    hangs. Two one-core actors on two CPUs ask for a fraction each; on a big cluster they get what they asked."""
    options = RayOptions(workers=2, cpus_per_worker=1.0)
    on_two = actor_cpus(options, cluster_cpus=2)
    assert 0 < on_two < 1 and 2 * on_two <= 2 - 0.5
    assert actor_cpus(options, cluster_cpus=64) == 1.0
    with pytest.raises(ValueError, match="no room"):
        actor_cpus(options, cluster_cpus=0.5)


def test_each_actor_runs_one_engine_worker_with_the_cores_it_was_given():
    """Actors are not pinned to cores: without these an engine would start one worker per core of the machine."""
    environment = ray_environment({}, RayOptions(cpus_per_worker=2.0, max_attempts=4))
    assert environment["STT_ENGINE_WORKERS"] == "1" and environment["STT_CPU_THREADS"] == "2"
    assert environment["OMP_WAIT_POLICY"] == "PASSIVE" and environment[MAX_ATTEMPTS_VARIABLE] == "4"
    assert ray_environment({}, RayOptions(cpus_per_worker=0.5))["STT_CPU_THREADS"] == "1"
    assert Path(environment["PYTHONPATH"].split(os.pathsep)[0], "bulk", "executors", "ray.py").exists()


def test_the_drivers_settings_reach_the_actors_and_nothing_else():
    driver = {"STT_DEVICE": "cpu", "STT_ENGINE_WORKERS": "4", "HF_HUB_OFFLINE": "1", "AWS_SECRET_ACCESS_KEY": "x",
              "PYTHONPATH": "/elsewhere"}
    environment = ray_environment(driver, RayOptions())
    assert environment["STT_DEVICE"] == "cpu" and environment["HF_HUB_OFFLINE"] == "1"
    assert environment["STT_ENGINE_WORKERS"] == "1"  # one per actor, whatever the driver's
    assert "AWS_SECRET_ACCESS_KEY" not in environment
    assert environment["PYTHONPATH"].endswith(os.pathsep + "/elsewhere")


def test_actor_options_cpu_and_gpu_nodes_fault_tolerance_and_no_installs():
    cpu = actor_options(RayOptions(workers=2), cluster_cpus=2, environ={})
    assert "num_gpus" not in cpu and 0 < cpu["num_cpus"] < 1
    assert cpu["max_restarts"] == -1 and cpu["max_task_retries"] >= 1  # a killed actor is replaced, its batch retried
    assert cpu["batch_size"] == BATCH_ITEMS
    assert set(cpu["runtime_env"]) == {"env_vars"}  # no pip, conda or working_dir: nodes are offline
    gpu = actor_options(RayOptions(workers=2, gpus_per_worker=0.5), cluster_cpus=32, environ={})
    assert gpu["num_gpus"] == 0.5 and gpu["num_cpus"] == 1.0


def test_an_actor_runs_its_batch_through_the_inprocess_executor(tmp_path: Path, wav_bytes, fake_models: FakeModels):
    audio = tone_file(tmp_path, wav_bytes)
    actor = BulkTranscriber(transcriber=chat_transcriber(fake_models))
    items = [Item(id="a/1", audio=audio), Item(id="b", audio=audio, response_format="srt"),
             Item(id="missing", audio=str(tmp_path / "nope.wav"))]
    columns = actor({"item": [item.model_dump_json() for item in items]})
    assert all(isinstance(value, (str, int, float)) for values in columns.values() for value in values)
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    outcomes = {row["id"]: outcome_from_row(next(i for i in items if i.id == row["id"]), row) for row in rows}
    assert isinstance(outcomes["a/1"], Done) and "heard" in outcomes["a/1"].text
    assert outcomes["a/1"].worker == f"ray:{os.uname().nodename}:{os.getpid()}"
    assert outcomes["a/1"].response["duration"] == 2.0 and outcomes["a/1"].model == "asr"
    assert isinstance(outcomes["b"].response, str) and outcomes["b"].response.startswith("1\n")
    assert isinstance(outcomes["missing"], Failed) and outcomes["missing"].error["error"]["code"] == "audio_not_found"
    actor.executor.close()


def test_every_outcome_survives_the_columns_it_travels_in():
    item = Item(id="x", audio="/a.wav")
    for outcome in (Done(item, {"text": "hé"}, "hé", 1.5, "ray:n:1", model="m", attempts=2),
                    Done(item, "WEBVTT\n", "t", 0.0, "ray:n:1"),
                    Failed(item, None, {"error": {"message": "bad"}}, "runner"),
                    Failed(item, 404, {"error": {"param": "model"}}, "ray:n:2", attempts=1),
                    GaveUp(item, "model unavailable", attempts=5)):
        assert outcome_from_row(item, outcome_row(outcome)) == outcome


def test_the_command_builds_a_ray_executor_without_starting_ray():
    args = parser().parse_args(["run", "m.jsonl", "--out", "o", "--executor", "ray", "--address", "auto",
                                "--workers", "3", "--cpus-per-worker", "0.5", "--gpus-per-worker", "1"])
    executor = make_executor(args)
    assert isinstance(executor, RayExecutor)
    assert executor.options == RayOptions(address="auto", workers=3, cpus_per_worker=0.5, gpus_per_worker=1.0)
    assert list(executor.run([])) == []  # nothing to do: no cluster joined
    executor.close()


def test_usage_statistics_are_off_before_ray_starts(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -r requirements-ray.txt")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "1")
    ray = import_ray()
    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0" and not ray.is_initialized()


def test_without_ray_the_ray_executor_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the extra gives
    with pytest.raises(SystemExit, match="requirements-ray.txt"):
        import_ray()


def test_ray_is_an_extra_of_the_development_venv_never_of_the_image():
    assert "ray[data]==" in (ROOT / "requirements-ray.txt").read_text()
    assert "requirements-ray.txt" in (ROOT / "Makefile").read_text()
    for never in ("requirements.txt", "bentofile.yaml", "bentofile.cpu.yaml"):
        assert "ray" not in (ROOT / never).read_text().lower().replace("array", ""), never


class RecordingRay:
    """What the executor asks of Ray when it starts or joins a cluster, recorded."""

    def __init__(self) -> None:
        self.inits: list[dict[str, object]] = []
        self.shutdowns = 0
        self.util = self
        self.node_ip = "127.0.0.1"

    def is_initialized(self) -> bool:
        return bool(self.inits)

    def init(self, **arguments: object) -> None:
        self.inits.append(arguments)

    def get_node_ip_address(self) -> str:
        return self.node_ip

    def shutdown(self) -> None:
        self.shutdowns += 1


def test_address_joins_that_cluster_and_starts_none(monkeypatch: pytest.MonkeyPatch):
    fake = RecordingRay()
    monkeypatch.setattr("bulk.executors.ray.import_ray", lambda: fake)
    executor = RayExecutor(RayOptions(address="ray://head:10001"))
    executor._connect()
    assert fake.inits == [{"address": "ray://head:10001", "log_to_driver": False, "configure_logging": False}]
    executor.close()
    assert fake.shutdowns == 1  # the driver disconnects; the cluster goes on


def test_a_local_ray_is_bound_to_loopback_without_dashboard_and_at_normal_priority(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -r requirements-ray.txt")
    fake = RecordingRay()
    monkeypatch.setattr("bulk.executors.ray.import_ray", lambda: fake)
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", raising=False)
    monkeypatch.setattr("ray._private.ray_constants.ENABLE_RAY_CLUSTER", True)
    executor = RayExecutor(RayOptions())
    executor._connect()
    [arguments] = fake.inits
    assert arguments["_node_ip_address"] == "127.0.0.1" and arguments["include_dashboard"] is False
    assert arguments["num_cpus"] == len(os.sched_getaffinity(0))
    assert arguments["_system_config"] == {"worker_niceness": 0}
    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # else Ray swaps 127.0.0.1 for the primary address
    executor.close()
    assert fake.shutdowns == 1
    elsewhere = RecordingRay()
    elsewhere.node_ip = "192.0.2.2"
    monkeypatch.setattr("bulk.executors.ray.import_ray", lambda: elsewhere)
    with pytest.raises(RuntimeError, match="127.0.0.1"):
        RayExecutor(RayOptions())._connect()
    assert elsewhere.shutdowns == 1
