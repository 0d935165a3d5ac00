"""sysgym on a multi-node Ray cluster (issue #23): env runners on another node, faults, restore.

A real cluster on this machine (``ray.cluster_utils.Cluster``, loopback addresses only): a head
node (the driver, the learner) and a worker node that alone carries the custom resource
:data:`RUNNER_RESOURCE`; every env runner asks for one unit of it, so Ray must place it there.
Batches are tiny (64 env steps per iteration); the module's Ray processes are checked gone at the
end (teardown runs even when a test fails).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ray.rllib", reason="Ray RLlib is not installed here; its tests run in .venv-rllib")
pytest.importorskip("torch", reason="torch is not installed here; the RLlib tests run in .venv-rllib")

from sysgym.integrations import rllib as srl  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*Overriding environment rllib-:UserWarning")

LOOPBACK = "127.0.0.1"
RUNNER_RESOURCE = "sysgym_runner_node"
MEMORY = 96 * 2**20  # object store per node
BATCH = 64
MODEL = {"fcnet_hiddens": [16], "head_fcnet_hiddens": []}
DEEPRM = ("sysgym/DeepRM-CompactSparse-v0", {"episode_length": 10})
DAG = ("sysgym/DAG-EGS-v0", {"num_nodes": (5, 7), "max_nodes": 7})
MULTI_FLOW = (srl.MULTI_FLOW_CC, {"n_flows": 2, "max_steps": 16})
RECOVERY_S = 180.0  # time allowed to get back to sampling after a fault


class LocalCluster:
    """A head node and runner nodes on loopback; ``stop`` ends every process it started."""

    def __init__(self) -> None:
        self.cluster: Any = None
        self.pids: set[int] = set()

    def start(self) -> None:
        import ray
        from ray.cluster_utils import Cluster

        if ray.is_initialized():  # e.g. the session instance of test_rllib.py
            ray.shutdown()
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False,
            "object_store_memory": MEMORY})
        self._track(self.cluster.head_node)
        self.runner_node = self.add_runner_node()
        ray.init(address=self.cluster.address, log_to_driver=False)
        self.cluster.wait_for_nodes()
        srl.register_all()

    def add_runner_node(self) -> Any:
        node = self.cluster.add_node(num_cpus=2, resources={RUNNER_RESOURCE: 2},
                                     node_ip_address=LOOPBACK, object_store_memory=MEMORY)
        self._track(node)
        return node

    @property
    def head_id(self) -> str:
        return self.cluster.head_node.node_id

    def _track(self, node: Any) -> None:
        for infos in node.all_processes.values():
            self.pids.update(info.process.pid for info in infos)

    def stop(self) -> None:
        import ray

        ray.shutdown()
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None

    def survivors(self, wait_s: float = 20.0) -> list[int]:
        """The started processes (raylets, GCS, ...) still alive after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            alive = [pid for pid in self.pids if _alive(pid)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is gone for our purpose
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster():
    """The cluster, on loopback and in its own temporary folder.

    Ray resolves "127.0.0.1" to the machine's network address unless multi-node clusters are
    off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read at import: set here for the processes the
    cluster starts and patched in this one, where ray is already imported). ``RAY_TMPDIR`` keeps
    the cluster's address file out of /tmp/ray, where a plain ``ray.init()`` elsewhere on this
    machine would find it and join this cluster.
    """
    import shutil
    import tempfile

    from ray._private import ray_constants

    folder = tempfile.mkdtemp(prefix="sgray", dir="/tmp")  # short: Ray's socket paths must fit
    handle = LocalCluster()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        patch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        patch.setenv("RAY_TMPDIR", folder)
        patch.delenv("RAY_ADDRESS", raising=False)
        patch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        try:
            handle.start()
            yield handle
        finally:
            handle.stop()
            alive = handle.survivors()
            shutil.rmtree(folder, ignore_errors=True)
            assert not alive, f"Ray processes of the test cluster survived: {alive}"


def small_config(env: str, env_config: dict[str, Any], runners: int = 1, **fault: Any) -> Any:
    config = (srl.ppo_config(env, env_config=env_config, num_env_runners=runners,
                             num_envs_per_env_runner=2, model_config=MODEL)
              .env_runners(custom_resources_per_env_runner={RUNNER_RESOURCE: 1},
                           num_cpus_per_env_runner=0.5, sample_timeout_s=120.0)
              .training(train_batch_size_per_learner=BATCH, minibatch_size=32, num_epochs=1)
              .debugging(seed=0))
    if fault:
        config = config.fault_tolerance(**fault)
    return config


def runner_facts(algo: Any) -> list[dict[str, Any]]:
    """Each remote env runner's process, node and env configuration."""
    def facts(runner: Any) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id(),
                "env_config": dict(runner.config.env_config), "num_envs": runner.num_envs}

    return algo.env_runner_group.foreach_env_runner(facts, local_env_runner=False)


def runner_after_fault(algo: Any, came_back: Any) -> dict[str, Any]:
    """:func:`runner_facts` of the one env runner once it answers from its restarted process
    (``came_back(facts)`` true), bounded by :data:`RECOVERY_S`. Until then the runner may be
    restarting (RLlib's calls skip an unhealthy runner; probing brings it back) or, right after
    its node was removed, the old process may still answer."""
    deadline = time.monotonic() + RECOVERY_S
    facts: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        facts = runner_facts(algo)
        if len(facts) == 1 and came_back(facts[0]):
            return facts[0]
        algo.restore_env_runners(algo.env_runner_group)
        time.sleep(1.0)
    raise AssertionError(f"the env runner did not come back {RECOVERY_S:.0f} s after the fault: {facts}")


def sampled(result: dict[str, Any]) -> int:
    return int(result["env_runners"].get("num_env_steps_sampled_lifetime", 0))


@pytest.mark.parametrize("env, env_config", [DEEPRM, DAG, MULTI_FLOW], ids=["deeprm", "dag", "multi_flow_cc"])
def test_env_runners_train_on_the_other_node(cluster, env, env_config):
    algo = small_config(env, env_config).build_algo()
    try:
        runners = runner_facts(algo)
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    assert len(runners) == 1
    assert all(r["node"] == cluster.runner_node.node_id != cluster.head_id for r in runners)
    assert all(r["pid"] != os.getpid() for r in runners)
    assert sampled(results[0]) >= BATCH and sampled(results[1]) >= sampled(results[0]) + BATCH
    metrics = results[-1]["env_runners"][srl.METRICS_KEY]
    if env == srl.MULTI_FLOW_CC:
        assert {"flow_0", "flow_1"} <= set(metrics)
        assert np.isfinite(metrics["flow_0"]["jain_index"])
    else:
        for result in results:
            assert result["env_runners"][srl.METRICS_KEY]["invalid_actions"] == 0.0


def _train_until_sampling(algo: Any, before: int) -> list[dict[str, Any]]:
    """train() until new env steps arrive again (the restarted runner takes a while to come
    back: iterations without a healthy runner return at once, sampling nothing)."""
    results = []
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        results.append(algo.train())
        if sampled(results[-1]) >= before + BATCH:
            return results
        time.sleep(1.0)
    raise AssertionError(f"no new env steps {RECOVERY_S:.0f} s after the fault: "
                         f"{[r.get('fault_tolerance') for r in results[-3:]]}")


def _actions(policy: Any, env_id: str, env_config: dict[str, Any], seeds: range) -> list[int]:
    env = gym.make(env_id, **env_config)
    actions = []
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            action = policy.act(obs, info)
            actions.append(int(action))
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
    env.close()
    return actions


def _faults(result: dict[str, Any]) -> dict[str, float]:
    """sysgym's count, from inside the restarted runners (arrives with their first sample)."""
    return result["env_runners"].get(srl.FAULTS_KEY, {})


def _rllib_noticed(result: dict[str, Any]) -> float:
    """How many of them RLlib saw fail and brought back (it misses a transparent restart)."""
    return result.get(srl.FAULTS_KEY, {}).get("env_runners_recreated", 0)


def test_faults_then_restore_on_a_fresh_cluster(cluster, tmp_path: Path):
    """Kill an env-runner process, then the whole runner node, while training: RLlib restarts the
    runner (on a new node), sysgym's creator rebuilds the env with the same config, the episodes
    in flight are counted as dropped; the checkpoint restores on a fresh cluster and acts the same.

    The restarts are counted inside the restarted runner, so the count is there in the iteration
    whose sampling resumed, whatever the timing. (RLlib's own ``on_env_runners_recreated`` fires
    only when a call failed first: after the node loss, Ray could restart the runner before the
    next iteration called it, and the restart went unreported; this test counted 1 instead of 2
    on a loaded machine.)
    """
    from ray.rllib.algorithms.algorithm import Algorithm

    env_id, env_config = DEEPRM
    config = small_config(env_id, env_config, restart_failed_env_runners=True,
                          max_num_env_runner_restarts=10, delay_between_env_runner_restarts_s=0.0,
                          env_runner_health_probe_timeout_s=30.0)
    algo = config.build_algo()
    try:
        first = runner_facts(algo)[0]
        result = algo.train()
        steps = sampled(result)
        assert _faults(result) == {}  # nothing restarted yet

        # 1. an env-runner process dies
        os.kill(first["pid"], signal.SIGKILL)
        second = runner_after_fault(algo, lambda facts: facts["pid"] != first["pid"])
        assert second["node"] == cluster.runner_node.node_id
        assert second["env_config"] == first["env_config"] and second["num_envs"] == first["num_envs"]
        results = _train_until_sampling(algo, steps)  # its first sample carries its count
        steps = sampled(results[-1])
        faults = _faults(results[-1])
        assert faults == {"env_runners_restarted": 1, "episodes_in_flight_dropped": first["num_envs"]}, faults
        assert _rllib_noticed(results[-1]) <= 1

        # 2. the whole runner node dies; a new node with the resource joins
        old_node = cluster.runner_node
        cluster.runner_node = cluster.add_runner_node()
        cluster.cluster.remove_node(old_node, allow_graceful=False)
        third = runner_after_fault(algo, lambda facts: facts["node"] == cluster.runner_node.node_id)
        assert third["pid"] != second["pid"] and third["env_config"] == first["env_config"]
        results = _train_until_sampling(algo, steps)
        # the iteration that sampled again: episodes finished on the new node, none invalid
        assert results[-1]["env_runners"][srl.METRICS_KEY]["invalid_actions"] == 0.0
        faults = _faults(results[-1])
        assert faults == {"env_runners_restarted": 2, "episodes_in_flight_dropped": 2 * first["num_envs"]}, (
            f"{faults}; RLlib noticed {_rllib_noticed(results[-1])}")
        assert _rllib_noticed(results[-1]) <= 2
        lifetime = sampled(results[-1])
        checkpoint = srl.save_checkpoint(algo, tmp_path / "checkpoint")
        before = srl.RLlibPolicy(algo.get_module(), *_spaces(env_id, env_config))
        expected = _actions(before, env_id, env_config, range(900, 903))
        weights = {k: v.clone() for k, v in algo.get_module().state_dict().items()}
    finally:
        algo.stop()

    # 3. a fresh cluster, restored from the checkpoint, acts identically and trains on
    cluster.stop()
    cluster.start()
    restored = Algorithm.from_checkpoint(str(checkpoint))
    try:
        after = srl.RLlibPolicy(restored.get_module(), *_spaces(env_id, env_config))
        assert _actions(after, env_id, env_config, range(900, 903)) == expected
        state = restored.get_module().state_dict()
        assert set(state) == set(weights) and all(bool((state[k] == weights[k]).all()) for k in weights)
        assert runner_facts(restored)[0]["node"] == cluster.runner_node.node_id
        result = restored.train()
    finally:
        restored.stop()
    assert sampled(result) >= lifetime + BATCH


def _spaces(env_id: str, env_config: dict[str, Any]) -> tuple[Any, Any]:
    env = gym.make(env_id, **env_config)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
