"""benchmarks.time_to_target: the target logic, the table, the run order, --resume and arguments."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import time_to_target as ttt
from benchmarks.targets import CASES, best_score, first_reach, reached


def _curve(*scores: float) -> list[dict[str, float]]:
    return [{"steps": 1000 * (i + 1), "train_s": float(i + 1), "score": s} for i, s in enumerate(scores)]


def test_reached_respects_the_direction_and_ties_and_nan():
    assert reached(3.5, 3.5, higher_is_better=False) and reached(3.4, 3.5, higher_is_better=False)
    assert not reached(3.6, 3.5, higher_is_better=False)
    assert reached(43.0, 43.0, higher_is_better=True) and not reached(42.9, 43.0, higher_is_better=True)
    assert not reached(float("nan"), 1.0, True) and not reached(float("nan"), 1.0, False)


def test_first_reach_is_the_first_evaluation_at_or_beyond_the_target():
    # slowdowns (lower is better) against a target of 4.0: evaluation 3 (4.0) is the first
    curve = _curve(9.0, 5.0, 4.0, 3.0)
    assert first_reach(curve, 4.0, False) == {"steps": 3000, "train_s": 3.0, "score": 4.0}
    assert first_reach(_curve(9.0, 5.0), 4.0, False) is None
    assert first_reach(_curve(10.0, 50.0, 20.0), 40.0, True)["steps"] == 2000
    assert best_score(_curve(9.0, float("nan"), 5.0, 7.0), False) == 5.0
    assert best_score(_curve(9.0, 5.0, 7.0), True) == 9.0
    assert best_score([], True) is None


def test_scorer_evaluates_at_the_cadence_and_stops_at_the_target():
    events = []
    case = CASES["deeprm"]   # eval_every 25,000 steps, lower is better
    scorer = ttt.Scorer(case, target=4.0, cap_s=1e9, emit=events.append)
    scores = iter([6.0, 3.9])
    evaluate = lambda: next(scores)  # noqa: E731
    assert scorer.after_iteration(10_000, evaluate) is False and events == []
    assert scorer.after_iteration(26_000, evaluate) is False      # scored: 6.0
    assert scorer.after_iteration(49_000, evaluate) is False and len(events) == 1   # next at 50,000
    assert scorer.after_iteration(50_400, evaluate) is True       # scored: 3.9 <= 4.0
    assert [e["steps"] for e in events] == [26_000, 50_400] and scorer.done == "reached"


def test_scorer_stops_at_the_cap_with_one_last_evaluation():
    events = []
    scorer = ttt.Scorer(CASES["abr"], target=40.0, cap_s=0.0, emit=events.append)
    assert scorer.after_iteration(100, lambda: 12.0) is True
    assert scorer.done == "cap" and events[0]["score"] == 12.0


def _record(trainer: str, seed: int, scores: list[float], target: float = 4.0, higher: bool = False,
            end_s: float = 100.0) -> dict:
    record = {"case": "deeprm", "env": "sysgym/DeepRM-CompactSparse-v0", "trainer": trainer, "seed": seed,
              "heuristic": "sjf", "metric": "mean_slowdown_all", "higher_is_better": higher,
              "target": target, "cap_s": 300.0, "curve": _curve(*scores), "peak_rss_mib": 200.0 + seed,
              "end": {"steps": 50_000, "train_s": end_s}}
    return ttt.summarise(record)


def test_table_gives_median_and_range_over_the_seeds_that_reached():
    # seeds reach at the 2nd, 6th and 1st evaluation: train seconds 2, 6, 1 -> median 2 [1-6] (mean 3)
    runs = [_record("sysgym", 0, [5.0, 3.0]), _record("sysgym", 1, [5.0, 5.0, 4.5, 4.2, 4.1, 3.9]),
            _record("sysgym", 2, [1.0])]
    (row,) = ttt.table_rows(runs)
    assert row[1:5] == ["sysgym", "3/3", "2.0 [1.0–6.0]", "2.00 k [1.00 k–6.00 k]"]
    assert row[5] == "500" and row[6] == "202"     # 50,000 steps / 100 s; the largest peak RSS
    assert row[0] == "DeepRM-CompactSparse-v0 (sjf 4)"


def test_table_says_not_reached_with_the_best_score_over_seeds():
    runs = [_record("sb3", 0, [9.0, 7.5]), {**_record("sb3", 1, [8.0, 6.25, 7.0]), "tree_rss_mib": 1500.0}]
    (row,) = ttt.table_rows(runs)
    assert row[6] == "1500"      # a process tree's RSS (RLlib's Ray workers) counts where recorded
    assert row[2] == "0/2" and row[3] == "not reached in 300 s (best 6.25)" and row[4] == "-"
    runs = [_record("sb3", 0, [10.0, 20.0], target=40.0, higher=True)]
    assert ttt.table_rows(runs)[0][3] == "not reached in 300 s (best 20)"


def test_plan_interleaves_seeds_outermost_and_rotates_the_trainers():
    order = ttt.plan(["deeprm", "abr"], ["a", "b", "c"], seeds=2)
    assert order[:6] == [("deeprm", "a", 0), ("deeprm", "b", 0), ("deeprm", "c", 0),
                         ("abr", "a", 0), ("abr", "b", 0), ("abr", "c", 0)]
    assert [t for _, t, s in order if s == 1][:3] == ["b", "c", "a"]
    assert len(order) == 12 and len(set(order)) == 12


def test_resume_skips_finished_runs_and_keeps_them(tmp_path, monkeypatch):
    finished = _record("sysgym", 0, [3.0])
    failed = {**_record("cleanrl", 0, []), "error": "exit 1: boom"}     # a failed run runs again
    (tmp_path / "results.json").write_text(json.dumps({"meta": {"commands": ["first"]}, "runs": [finished, failed]}))
    calls = []

    def fake_run(case, trainer, seed, target, cap_s, horizon, on_event, actions):
        calls.append((case.name, trainer, seed))
        return _record(trainer, seed, [3.0])

    monkeypatch.setattr(ttt, "run_one", fake_run)
    monkeypatch.setattr(ttt, "score_target", lambda case: 4.0)
    args = ttt.parse_args(["--cases", "deeprm", "--trainers", "sysgym,cleanrl", "--seeds", "2",
                           "--out", str(tmp_path), "--resume"])
    args.argv = ["--resume"]
    data = ttt.run_benchmark(args)
    assert ("deeprm", "sysgym", 0) not in calls
    assert sorted(calls) == [("deeprm", "cleanrl", 0), ("deeprm", "cleanrl", 1), ("deeprm", "sysgym", 1)]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["runs"]) == 4 == len(data["runs"]) and saved["meta"]["commands"][0] == "first"
    assert not any(r.get("error") for r in saved["runs"])
    assert "| sysgym " in (tmp_path / "results.md").read_text()


def test_a_broken_results_file_is_a_clear_error(tmp_path):
    (tmp_path / "results.json").write_text('{"runs": [{"case": "deeprm"}]}')
    with pytest.raises(ValueError, match="results.json: not a time-to-target results file"):
        ttt.load_finished(tmp_path)


@pytest.mark.parametrize("argv, words", [
    (["--cap-s", "0"], "--cap-s must lie in"),
    (["--cap-s", "-5"], "--cap-s must lie in"),
    (["--cap-s", "soon"], "--cap-s must be a number"),
    (["--trainers", "sysgym,ppo2"], "--trainers: unknown ['ppo2']"),
    (["--cases", "pong"], "--cases: unknown ['pong']"),
    (["--seeds", "0"], "argument --seeds: must be between 1 and 100, got 0"),
    (["--horizon", "many"], "argument --horizon: expected an integer, got 'many'"),
    (["--resume", "--out", ""], "--resume needs a results folder"),
])
def test_bad_arguments_are_one_line_errors(argv, words, capsys):
    with pytest.raises(SystemExit) as stop:
        ttt.parse_args(argv)
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert words in error


def test_quick_mode_defaults():
    args = ttt.parse_args(["--quick"])
    assert args.seeds == 1 and args.cap_s == 30.0 and args.out == "" and "rllib" not in args.trainers


def test_cleanrl_masked_greedy_action_avoids_invalid_actions():
    torch = pytest.importorskip("torch")
    from benchmarks.cleanrl_ppo import Agent

    torch.manual_seed(0)
    agent = Agent(4, 3, (8,), "tanh", shared=False)
    with torch.no_grad():
        agent.actor_head.bias.copy_(torch.tensor([5.0, 0.0, -5.0]))   # action 0 preferred
    obs = np.zeros((2, 4), dtype=np.float32)
    mask = np.array([[True, True, True], [False, True, True]])
    assert agent.act(obs, mask).tolist() == [0, 1]
    # sampled: action 0 (p ~ 0.99) is masked in row 1, action 2 (p ~ 7e-3 of the rest) rarely drawn
    generator = torch.Generator().manual_seed(1)
    rows = np.tile(mask, (200, 1))
    drawn = agent.act(np.zeros((400, 4), dtype=np.float32), rows, greedy=False, generator=generator)
    assert rows[np.arange(400), drawn].all()   # every drawn action is allowed
    assert set(drawn[1::2]) <= {1, 2} and 0 in set(drawn[0::2])


def test_cleanrl_return_scaler_divides_by_the_running_std():
    from benchmarks.cleanrl_ppo import _ReturnScaler

    scaler = _ReturnScaler(num_envs=2, gamma=0.0, clip=100.0)
    # gamma 0: the "return" is the reward itself; after one batch [1, 3] the running variance is
    # (1e-4 * 1 + 2 * 1 + 2^2 * 1e-4 * 2 / (2 + 1e-4)) / (2 + 1e-4) ~ 1.0000 (mean 2, var 1)
    out = scaler(np.array([1.0, 3.0]), np.array([False, False]))
    assert np.allclose(out, [1.0, 3.0], rtol=1e-3)
    out = scaler(np.array([2.0, 2.0]), np.array([False, False]))
    # count 2.0001 -> 4.0001; the batch (mean 2, var 0) adds weight but no spread: var ~ 1.0002 * 2.0001 / 4.0001
    var = 1.0002 * 2.0001 / 4.0001
    assert np.allclose(out, np.array([2.0, 2.0]) / np.sqrt(var), rtol=1e-3)


def test_cleanrl_observation_scaler_standardises_with_running_stats_and_clips():
    from benchmarks.cleanrl_ppo import _ObsScaler

    scaler = _ObsScaler(n_obs=1, clip=1.5)
    # one batch [0, 2]: mean 1, variance 1 (the 1e-4 prior count barely moves them)
    out = scaler(np.array([[0.0], [2.0]]), update=True)
    assert np.allclose(out, [[-1.0], [1.0]], atol=1e-3)
    assert np.allclose(scaler(np.array([[1.5], [3.0]])), [[0.5], [1.5]], atol=1e-3)   # 2.0 clipped to 1.5
    assert np.allclose(scaler.stats.mean, [1.0], atol=1e-3)     # acting does not update the stats
