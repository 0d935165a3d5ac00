"""The sysgym benchmark: score any policy on every family's fixed evaluation suite against the
baselines, the way Atari reports human-normalised scores.

::

    sysgym benchmark --policy heuristic:sjf --suite deeprm
    sysgym benchmark --policy runs/my_ppo --suite all --jobs 2 --out bench_out

    from sysgym.benchmark import benchmark
    card = benchmark("mypkg.agent:make", suite="appointments")
    print(card.markdown()); card.write("bench_out")

Modules: :mod:`~sysgym.benchmark.suites` (what is played), :mod:`~sysgym.benchmark.policies`
(``--policy`` strings), :mod:`~sysgym.benchmark.runner` (playing, batched and in parallel),
:mod:`~sysgym.benchmark.baselines` (the shipped reference rows, ``reference.json``),
:mod:`~sysgym.benchmark.scores` (normalised scores, IQM, bootstrap intervals),
:mod:`~sysgym.benchmark.scorecard` (markdown, CSV, JSON, plot) and
:mod:`~sysgym.benchmark.commands` (the command line).
"""

from .commands import benchmark
from .suites import CHUNK, EVAL_SEED, FAMILIES, get_suites

__all__ = ["CHUNK", "EVAL_SEED", "FAMILIES", "benchmark", "get_suites"]
