"""Memory per environment instance: peak RSS of the native vector env at B = 1 and B = 256, per family.

Each measurement runs in a fresh subprocess that imports sysgym, resets its peak-RSS counter
(``/proc/self/clear_refs``), reads its RSS, builds ``make_vec(ID, num_envs=B,
vectorization_mode="vector_entry_point")`` with default kwargs, resets it and takes ``steps``
steps with random valid actions (episodes end and autoreset on the way for the short-episode
families), then reads ``VmRSS`` and the peak ``VmHWM`` from ``/proc/self/status``. Reported:
the increase of the peak over the RSS before building (what the env costs at its worst, with
everything it loads: kernels, trace files) and of the RSS after stepping, at B = 1 and B = 256;
per sub-env = (peak(256) - peak(1)) / 255. Target: no family above 1 MB per sub-env at default
kwargs. Linux only (``/proc``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

from sysgym.bench import format_table

FAMILIES = (
    ("DeepRM image", "sysgym/DeepRM-Image-v0"),
    ("DeepRM compact", "sysgym/DeepRM-Compact-v0"),
    ("DAG", "sysgym/DAG-EGS-v0"),
    ("ABR", "sysgym/ABR-v0"),
    ("CC", "sysgym/CC-v0"),
    ("Appointments", "sysgym/Appointments-P3-v1"),
)
QUICK = ("DeepRM compact", "ABR")
TARGET_KB = 1024

MEASURE = textwrap.dedent('''
    import json, resource, sys
    import gymnasium as gym
    import sysgym
    from sysgym.bench import masked_random_policy, random_table_policy

    def status():
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])  # kB
        return out

    env_id, num_envs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) restarts from the current RSS
    before = status()
    vec = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    obs, info = vec.reset(seed=0)
    built = status()
    policy = (masked_random_policy(0) if "action_mask" in info else random_table_policy(vec.action_space))
    for _ in range(steps):
        obs, _, _, _, info = vec.step(policy(obs, info))
    after = status()
    print(json.dumps({"before": before["VmRSS"], "built": built["VmRSS"], "after": after["VmRSS"],
                      "peak": after["VmHWM"], "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
''')


def measure(env_id: str, num_envs: int, steps: int) -> dict[str, int]:
    """RSS figures (kB) of one fresh process that builds and steps ``env_id`` at ``num_envs``."""
    out = subprocess.run([sys.executable, "-c", MEASURE, env_id, str(num_envs), str(steps)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{env_id} B={num_envs}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def main(quick: bool = False, steps: int | None = None) -> None:
    steps = steps or (20 if quick else 200)
    rows = []
    for family, env_id in FAMILIES:
        if quick and family not in QUICK:
            continue
        one, many = measure(env_id, 1, steps), measure(env_id, 256, steps)
        peak1, peak256 = one["peak"] - one["before"], many["peak"] - many["before"]
        per_env = (peak256 - peak1) / 255
        rows.append([family, env_id, _mb(one["before"]), _mb(peak1), _mb(one["after"] - one["before"]),
                     _mb(peak256), _mb(many["after"] - many["before"]), f"{per_env:.0f} kB",
                     "yes" if per_env <= TARGET_KB else "NO"])
    headers = ["family", "env (default kwargs)", "RSS before (interpreter + sysgym)", "B=1 peak increase",
               "B=1 RSS increase after stepping", "B=256 peak increase", "B=256 RSS increase after stepping",
               "per sub-env (peak)", "<= 1 MB"]
    print(format_table(rows, headers))
    print(f"\nfresh process per cell; increase over the RSS just before make_vec; {steps} steps with random "
          f"valid actions; per sub-env = (peak(B=256) - peak(B=1)) / 255; 1 MB = 1024 kB.")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    main(quick=args.quick, steps=args.steps)
