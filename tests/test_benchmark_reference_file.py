"""The shipped reference.json cannot drift from the code: a subset of every suite's rows is
recomputed here (same seeds) and must match the file exactly.

Deterministic rows are recomputed on a few episodes; the random rows, whose generator is shared by
a batch, on their whole first unit of CHUNK episodes (what make_reference played; not for the
multi-flow CC case, whose unit is the slowest to replay). If this fails
after a deliberate change: ``python -m benchmarks.make_reference``.
"""

import os
from pathlib import Path

import numpy as np
import pytest

from sysgym.benchmark import baselines, runner
from sysgym.benchmark.policies import parse
from sysgym.benchmark.suites import CHUNK, get_suites

SHIPPED = baselines.load()
CASES = [("deeprm", "scenario-3"), ("deeprm", "swf-64"), ("dag", "n20"), ("abr", "test"), ("cc", "1-flow"),
         ("cc", "2-flows"), ("appointments", "P3")]
# The FCC / Norway rows, when the real traces are here (shared/data/abr beside the repository, as
# benchmarks/bench_abr.py finds them); their hash covers the files' bytes.
ABR_DATA = Path(os.environ.get("SYSGYM_ABR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "abr"))
SUITES = {s.name: s for s in get_suites("all", ABR_DATA if (ABR_DATA / "video_envivio").is_dir() else None)}
CASES += [("abr", c.name) for c in SUITES["abr"].cases[1:] if c.name in SHIPPED["suites"].get("abr", {}).get("cases", {})]


@pytest.mark.parametrize("suite_name, case_name", CASES)
def test_reference_rows_match_a_recomputation(suite_name, case_name):
    suite = SUITES[suite_name]
    case = suite.case(case_name)
    shipped = baselines.shipped_rows(SHIPPED, suite, case, case.episodes)
    assert shipped is not None, f"reference.json has no rows for {suite_name}/{case_name} with this hash: " \
                                f"rerun python -m benchmarks.make_reference"
    assert set(shipped) == {r.name for r in case.references}
    few = 2 if case.n_flows else 3
    fresh = baselines.compute([(suite, case)], episodes=few)[(suite_name, case_name)]
    for name, row in fresh.items():
        if row.role == "random":
            continue
        assert row.values.tolist() == shipped[name].values[:few].tolist(), name
    if case.n_flows:
        return          # the multi-flow random row plays 50 x 400 MIs: its 1-flow twin is checked
    unit = min(CHUNK, case.episodes)
    random = next(r for r in case.references if r.role == "random")
    run = runner.run([(parse(random.policy), suite, case)], episodes=unit)[0]
    assert np.array_equal(run.values[suite.primary.name], shipped["random"].values[:unit])
