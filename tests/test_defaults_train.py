"""benchmarks.defaults_train: the CPU-clock scorer's cadence, cap and stop, the table, the arguments."""

from __future__ import annotations

import pytest

from benchmarks import defaults_train as dt


def _scorer(target: float, cap_s: float, clock: list[float], monkeypatch) -> dt.CpuScorer:
    monkeypatch.setattr(dt.time, "process_time", lambda: clock[0])
    return dt.CpuScorer(dt.ALL_CASES["dag"], target, cap_s)   # eval_every 25,000 steps, higher is better


def test_it_scores_at_the_cadence_and_stops_at_the_target(monkeypatch):
    clock = [0.0]
    scorer = _scorer(target=10.0, cap_s=1e9, clock=clock, monkeypatch=monkeypatch)
    scores = iter([5.0, 12.0])
    for steps, seconds in ((10_000, 1.0), (20_000, 2.0)):   # before the first 25,000 steps: no scoring
        clock[0] = seconds
        assert not scorer.after_iteration(steps, lambda: pytest.fail("scored off the cadence"))
    clock[0] = 3.0
    assert not scorer.after_iteration(26_000, lambda: next(scores))    # 5 < 10
    clock[0] = 4.0
    assert not scorer.after_iteration(40_000, lambda: pytest.fail("the next scoring is at 50,000"))
    clock[0] = 5.0
    assert scorer.after_iteration(51_000, lambda: next(scores))        # 12 >= 10: stop
    assert [(e["steps"], e["train_s"], e["score"]) for e in scorer.events] == [(26_000, 3.0, 5.0), (51_000, 5.0, 12.0)]


def test_scoring_time_is_not_training_time_and_the_cap_stops_the_run(monkeypatch):
    clock = [0.0]
    scorer = _scorer(target=100.0, cap_s=10.0, clock=clock, monkeypatch=monkeypatch)

    def slow_score():   # scoring takes 4 CPU s of this process
        clock[0] += 4.0
        return 1.0

    clock[0] = 6.0
    assert not scorer.after_iteration(25_000, slow_score)
    assert scorer.train_s() == 6.0                        # 10 s elapsed, 4 of them scoring
    clock[0] = 15.0                                       # 11 s of training: over the cap, off the cadence
    assert scorer.after_iteration(30_000, slow_score)     # scored once more, then stopped
    assert [e["train_s"] for e in scorer.events] == [6.0, 11.0]


def test_the_table_counts_reached_runs_and_names_a_collapsed_policy():
    def row(seed, reached, train_s, steps, final, share, top):
        return {"label": "defaults", "case": "abr", "seed": seed, "target": 43.26, "reached": reached,
                "train_s": train_s, "steps": steps, "final_score": final, "top_action_share": share,
                "top_action": top, "cap_s": 30.0}

    text = dt.table([row(1, True, 9.0, 300_000, 44.0, 0.4, 2), row(0, True, 5.0, 100_000, 45.0, 0.5, 3),
                     row(2, False, None, None, 0.1485, 1.0, 0)])
    line = next(li for li in text.splitlines() if "abr" in li)
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[3:7] == ["2/3", "7.0", "200,000", "45 44 0.1485"]   # medians over the two that reached
    assert cells[7] == "0.50 0.40 1.00 (all 0)"


@pytest.mark.parametrize("argv, message", [
    (["--cases", "nope"], "unknown cases"),
    (["--seeds", "0"], "--seeds in [1, 100]"),
    (["--first-seed", "901"], "--first-seed must lie in [0, 900]"),
    (["--set", "env.scenario=3"], "--set takes PPO settings only"),
])
def test_bad_arguments_are_refused_before_any_run(argv, message, capsys, tmp_path):
    with pytest.raises(SystemExit):
        dt.main([*argv, "--out", str(tmp_path / "out")])
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
