"""The kernels share their scaffolding (cython_core/kernel.pxd and rng.pxd) instead of copying it.

Source checks: every env kernel cimports the shared helpers, checks its state and its per-sub-env
buffers with them, and defines no private copy of a shared helper. Behaviour checks: a buffer
with the wrong number of rows is refused with a ValueError naming it, before a nogil loop
(compiled without bounds checks) reads or writes it.
"""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import sysgym  # noqa: F401  (registers the IDs)

CORE = Path(__file__).resolve().parents[1] / "cython_core"
SHARED = ("kernel.pxd", "rng.pxd")
# Kernels that still carry their own scaffolding, to be converted once the speed work on them
# lands (issue #26); the test below fails as soon as one is converted, so the list cannot go stale.
PENDING: set[str] = set()


def _env_kernels() -> list[Path]:
    """The .pyx files that define a batched env kernel (a `cdef class ...Kernel`)."""
    return [p for p in sorted(CORE.glob("*.pyx"))
            if re.search(r"^cdef class \w+Kernel\b", p.read_text(), re.M)]


def _bare(name: str) -> str:
    return name.lstrip("_").removeprefix("rng_")


def _shared_helpers() -> set[str]:
    names = set()
    for pxd in SHARED:
        names |= set(re.findall(r"^cdef inline\s+[\w*]+\s+(\w+)\(", (CORE / pxd).read_text(), re.M))
    return names


def _methods(text: str) -> dict[str, str]:
    """Class-level `def`/`cdef` bodies by name (from the header to the next one)."""
    parts = re.split(r"^(?=    c?def )", text, flags=re.M)
    found = {}
    for part in parts:
        m = re.match(r"    c?def (?:[\w*]+ )*?(\w+)\(", part)
        if m:
            found[m.group(1)] = part
    return found


def test_the_shared_files_define_the_helpers():
    assert {"check_batch", "check_state", "ratio", "clip", "ring_next", "ring_wrap", "zero_doubles",
            "shift_left", "rng_between", "rng_uniform", "rng_seed_child"} <= _shared_helpers()


def test_the_env_kernels_are_the_expected_ones():
    expected = {"cluster.pyx", "abr.pyx", "cc.pyx", "appointments.pyx", "dag.pyx"}
    assert {p.name for p in _env_kernels()} >= expected | PENDING


@pytest.mark.parametrize("name", sorted({p.name for p in _env_kernels()} - PENDING))
def test_env_kernel_uses_the_shared_scaffolding(name):
    text = (CORE / name).read_text()
    assert "from kernel cimport" in text and "from rng cimport" in text
    assert re.search(r"check_state\(state, self\.B\)", text), f"{name}: __init__ must check_state"
    methods = _methods(text)
    for entry in ("reset", "step"):
        assert entry in methods, f"{name} has no {entry}"
        assert "check_batch(" in methods[entry], f"{name}.{entry} must check_batch its flags"


@pytest.mark.parametrize("name", sorted(PENDING))
def test_pending_kernels_are_still_pending(name):
    text = (CORE / name).read_text()
    assert "from kernel cimport" not in text, f"{name} uses kernel.pxd now: remove it from PENDING"


def _private_copies(text: str) -> list[str]:
    """The functions a .pyx defines under the name of a shared helper (give or take `_`/`rng_`)."""
    shared = {_bare(n) for n in _shared_helpers()}
    defined = re.findall(r"^\s*cdef (?:inline\s+)?[\w*]+\s+(\w+)\(", text, re.M)
    return sorted(n for n in defined if _bare(n) in shared)


@pytest.mark.parametrize("name", sorted(p.name for p in CORE.glob("*.pyx") if p.name not in PENDING))
def test_no_private_copy_of_a_shared_helper(name):
    copies = _private_copies((CORE / name).read_text())
    assert not copies, f"{name} defines its own {copies}: cimport them from {' / '.join(SHARED)}"


def test_private_copy_detection_can_fail():
    # the copies appointments.pyx held before it was converted (issue #26)
    text = ("cdef inline uint64_t _splitmix64(uint64_t* x) noexcept nogil:\n    pass\n"
            "cdef class K:\n    cdef void _zero_doubles(self, double* row) noexcept nogil:\n        pass\n"
            "cdef double _cost(const Params* p) noexcept nogil:\n    pass\n")
    assert _private_copies(text) == ["_splitmix64", "_zero_doubles"]


# ---------------------------------------------------------------------- behaviour
def _kernel(env_id: str, num_envs: int = 2):
    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    vec.reset(seed=0)
    return vec, vec.unwrapped._kernel


@pytest.mark.parametrize("env_id", ["sysgym/DeepRM-Compact-v0", "sysgym/ABR-v0", "sysgym/CC-v0",
                                    "sysgym/Appointments-P1-v0"])
def test_step_refuses_a_flag_buffer_of_the_wrong_length(env_id):
    vec, kernel = _kernel(env_id)
    with pytest.raises(ValueError, match="active must have one entry per sub-env \\(2\\), got 3"):
        kernel.step(np.ones(3, dtype=np.uint8))
    vec.close()


def test_reset_refuses_buffers_of_the_wrong_length():
    vec, kernel = _kernel("sysgym/DeepRM-Compact-v0")
    with pytest.raises(ValueError, match="which"):
        kernel.reset(np.ones(3, dtype=np.uint8))
    vec, kernel = _kernel("sysgym/ABR-v0")
    with pytest.raises(ValueError, match="which"):
        kernel.reset(np.ones(3, dtype=np.uint8), np.full(2, -1, dtype=np.int64))
    with pytest.raises(ValueError, match="forced_trace"):
        kernel.reset(np.ones(2, dtype=np.uint8), np.full(3, -1, dtype=np.int64))
    vec, kernel = _kernel("sysgym/CC-v0")
    with pytest.raises(ValueError, match="which"):
        kernel.reset(np.ones(3, dtype=np.uint8))
    vec, kernel = _kernel("sysgym/Appointments-P1-v0")
    with pytest.raises(ValueError, match="which must have one entry per sub-env \\(2\\), got 1"):
        kernel.reset(np.ones(1, dtype=np.uint8))


def test_kernel_refuses_state_arrays_of_the_wrong_shape():
    from sysgym.cython_core.cluster import ClusterKernel
    from sysgym.envs.deeprm.config import kernel_config

    vec, _ = _kernel("sysgym/DeepRM-Compact-v0")
    env = vec.unwrapped
    cfg = kernel_config(env.config, 2)
    ClusterKernel(cfg, dict(env._state), env._trace)   # the env's own state is accepted
    state = dict(env._state, acc=np.zeros((3, env._state["acc"].shape[1])))
    with pytest.raises(ValueError, match="'acc' must have one row per sub-env \\(2\\)"):
        ClusterKernel(cfg, state, env._trace)
    state = dict(env._state, rng=np.ones((2, 3), dtype=np.uint64))
    with pytest.raises(ValueError, match="'rng' must have shape \\(2, 4\\)"):
        ClusterKernel(cfg, state, env._trace)


def test_robust_mpc_refuses_buffers_of_the_wrong_length():
    from sysgym.cython_core.abr_mpc import robust_mpc_act

    cfg = {"horizon": 2, "num_chunks": 4, "chunk_s": 4.0, "buffer_cap_s": 60.0, "sleep_step_s": 0.5,
           "rebuffer_penalty": 4.3, "smoothness_penalty": 1.0, "first_level": 1}
    sizes = np.full((3, 4), 1e5)
    quality = np.array([0.3, 0.75, 1.2])
    B, W = 2, 5

    def call(out_rows=B, err_cols=W):
        return robust_mpc_act(cfg, sizes, quality, np.ones(B, np.int64), np.full(B, 1e5), np.ones(B),
                              np.full(B, 8.0), np.zeros(B, np.int64), np.ones((B, W)),
                              np.zeros((B, err_cols)), np.zeros(B, np.int64), np.zeros(B), np.zeros(B),
                              np.zeros(out_rows, np.int64))

    call()
    with pytest.raises(ValueError, match="out must have one entry per sub-env \\(2\\), got 3"):
        call(out_rows=3)
    with pytest.raises(ValueError, match="err must have the window of thr"):
        call(err_cols=W + 1)


def test_accessors_refuse_an_index_out_of_range():
    vec, kernel = _kernel("sysgym/CC-v0")
    assert kernel.link_bandwidth(1, 0) > 0
    with pytest.raises(IndexError, match="sub-env must be in \\[0, 1\\], got 2"):
        kernel.link_bandwidth(2, 0)
    with pytest.raises(IndexError, match="link must be in \\[0, 0\\], got 1"):
        kernel.queue_length(0, 1)
    with pytest.raises(IndexError, match="sub-env"):
        kernel.bottleneck_bandwidth(2)
    with pytest.raises(IndexError, match="sub-env"):
        kernel.bottleneck_queue(-1)
    vec, kernel = _kernel("sysgym/DeepRM-Compact-v0")
    with pytest.raises(IndexError, match="sub-env must be in \\[0, 1\\], got 2"):
        kernel.fits_offset(2, 0)
    assert kernel.fits_offset(0, -1) == -1   # no job in a slot before the window


def test_dag_kernel_refuses_buffers_and_indices_out_of_range():
    """Every DAGKernel entry point checks its sub-env index and buffer lengths before its loops
    (compiled without bounds checks) read them; the right lengths are still accepted."""
    from sysgym.cython_core.dag import DAGKernel
    from sysgym.envs.dag.config import kernel_config
    from sysgym.envs.dag.state import kernel_buffers

    vec, kernel = _kernel("sysgym/DAG-EGS-v0")
    n = vec.unwrapped.config.max_nodes
    a = n * n
    with pytest.raises(ValueError, match="active must have one entry per sub-env \\(2\\), got 3"):
        kernel.step(np.ones(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="which must have one entry per sub-env \\(2\\), got 1"):
        kernel.reset(np.ones(1, dtype=np.uint8), np.full(2, -1, dtype=np.int64))
    with pytest.raises(ValueError, match="choice must have one entry per sub-env \\(2\\), got 3"):
        kernel.reset(np.ones(2, dtype=np.uint8), np.full(3, -1, dtype=np.int64))

    def outcomes(b=1, cand=a, width=a, length=a):
        kernel.edge_outcomes(b, np.ones(cand, dtype=np.int8), np.empty(width, dtype=np.int64),
                             np.empty(length, dtype=np.int64))

    outcomes()
    with pytest.raises(IndexError, match="sub-env must be in \\[0, 1\\], got 2"):
        outcomes(b=2)
    with pytest.raises(ValueError, match=f"candidates must have one entry per action \\({a}\\), got {a - 1}"):
        outcomes(cand=a - 1)
    with pytest.raises(ValueError, match="width_out must have one entry per action"):
        outcomes(width=a - 1)
    with pytest.raises(ValueError, match="length_out must have one entry per action"):
        outcomes(length=a + 1)

    assert kernel.processors_of(1, np.zeros(n, dtype=np.int64)) >= 1
    with pytest.raises(IndexError, match="sub-env must be in \\[0, 1\\], got -1"):
        kernel.processors_of(-1, np.zeros(n, dtype=np.int64))
    with pytest.raises(ValueError, match=f"out must have one entry per node \\({n}\\), got {n - 1}"):
        kernel.processors_of(0, np.zeros(n - 1, dtype=np.int64))
    with pytest.raises(IndexError, match="sub-env must be in \\[0, 1\\], got 2"):
        kernel.done(2)
    with pytest.raises(IndexError, match="sub-env must be in \\[0, 1\\], got 5"):
        kernel.edge_valid(5, 0, 1)
    assert kernel.edge_valid(0, n, 0) is False     # a node index out of range is an invalid edge

    cfg = vec.unwrapped.config
    state = kernel_buffers(cfg, 2)
    DAGKernel(kernel_config(cfg, 2), state, vec.unwrapped._tasks)   # right rows: accepted
    state["width"] = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="'width' must have one row per sub-env \\(2\\)"):
        DAGKernel(kernel_config(cfg, 2), state, vec.unwrapped._tasks)
    vec.close()
