"""Issue #19: a case that scores a policy on the inputs that trained it is flagged, labelled and
left out of every aggregate; shipped reference agents are scored on held-out cases only.

Files are compared by content here with hashlib, independently of sysgym.benchmark.heldout."""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from sysgym import reference
from sysgym.benchmark import benchmark, heldout, scorecard
from sysgym.benchmark.suites import get_suites
from sysgym.traces import trace_path

ABR_DATA = Path(os.environ.get("SYSGYM_ABR_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "abr"))
HAVE_DATA = (ABR_DATA / "video_envivio").is_dir()


def _sha256s(folder: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def _fake_abr_data(root: Path) -> Path:
    """traces/a (2 traces), traces/b (a byte copy of a's first trace and one of its own), a video."""
    for name in ("a", "b"):
        (root / "traces" / name).mkdir(parents=True)
    (root / "video_envivio").mkdir()
    for k, rate in enumerate((1.2, 3.0, 2.1)):
        lines = [f"{t:.1f} {rate + 0.5 * np.sin(t / 7):.3f}" for t in np.arange(0, 300, 1.0)]
        text = "\n".join(lines) + "\n"
        if k < 2:
            (root / "traces" / "a" / f"trace_{k}").write_text(text)
        if k != 1:
            (root / "traces" / "b" / f"renamed_{k}").write_text(text)
    for level, kbps in enumerate((300, 750, 1200, 1850, 2850, 4300)):
        sizes = [int(kbps * 1000 / 8 * 4 * (1 + 0.1 * np.cos(c))) for c in range(48)]
        (root / "video_envivio" / f"video_size_{level}").write_text("\n".join(map(str, sizes)) + "\n")
    return root


def test_a_checkpoint_is_flagged_on_cases_that_share_its_training_traces(tmp_path):
    from sysgym.agents.ppo import train

    data = _fake_abr_data(tmp_path / "abr")
    env_kwargs = {"traces": str(data / "traces" / "a"), "video": str(data / "video_envivio")}
    train("sysgym/ABR-Pensieve-v0", steps=128, out_dir=tmp_path / "run", num_envs=2, n_steps=64, batch_size=64,
          encoder="mlp", env_kwargs=env_kwargs, progress=False, tensorboard=False)
    card = benchmark(str(tmp_path / "run" / "checkpoint.pt"), suite="abr", abr_data=str(data), episodes=2)
    envs = {e.case.name: e for e in card.envs}
    assert envs["a"].trained_on == "trained on 2 of its 2 inputs (a)"
    assert envs["b"].trained_on == "trained on 1 of its 2 inputs (a)"       # found by content, not by name
    assert envs["a"].score is not None and envs["b"].score is not None        # scored and shown ...
    held_out = [e for e in card.envs if e.score is not None and not e.trained_on]
    assert card.overall["envs"] == len(held_out)                               # ... in no aggregate
    assert card.families.get("abr", {"envs": 0})["envs"] == len(held_out)
    text = card.markdown()
    assert "| a † |" in text and "| b † |" in text and "not held out" in text
    records = {r["env"]: r for r in card.records()}
    assert records["b"]["split"] == "traces/b" and records["b"]["trained_on"].startswith("trained on 1")


def test_flagged_cases_leave_the_aggregates_of_a_scorecard():
    from sysgym.benchmark.baselines import Row
    from sysgym.benchmark.runner import CaseRun

    suite = get_suites("appointments")[0]
    rows, runs = {}, []
    for k, case in enumerate(suite.cases):
        rows[(suite.name, case.name)] = {
            "random": Row("random", "random", "", np.array([0.0, 0.0]), {}),
            "alternate": Row("alternate", "baseline", "", np.array([10.0, 10.0]), {})}
        runs.append(CaseRun(suite.name, case.name, "p", episodes=2,
                            values={"percentile_efficacy": np.array([5.0, 5.0]) * (k + 1)}))
    card = scorecard.build(runs, [suite], rows, "p", trained_on={("appointments", "P3"): "trained on it"})
    # scores 0.5, 1.0 and 1.5; P3 (1.5) is left out: mean (0.5 + 1.0) / 2
    assert card.overall["envs"] == 2 and card.overall["mean"][0] == pytest.approx(0.75)
    assert card.families["appointments"]["envs"] == 2


@pytest.mark.parametrize("env_id", reference.available())
def test_no_reference_agent_is_scored_on_its_training_data(env_id):
    """The training files are found from the training command's env kwargs and hashed here; the
    metadata's own training_data must agree with them where both exist."""
    meta = reference.metadata(env_id)
    data = meta.get("training_data") or {}
    traces = (meta["training"].get("config", {}).get("env_kwargs") or {}).get("traces")
    if not isinstance(traces, str):
        assert data in ({}, {"inputs": "seeded"})
        return                                   # seeded inputs: held out by their seeds
    folder = Path(traces) if os.sep in traces else trace_path("abr", traces)
    trained = _sha256s(folder) if folder.is_dir() else set()
    assert data.get("sha256"), f"{env_id} trained on {traces}; its metadata must list those files (training_data)"
    if trained:
        assert set(data["sha256"]) == trained, f"{env_id}: training_data differs from {folder}"
    trained = trained or set(data["sha256"])
    suites = {s.name: s for s in get_suites("all", ABR_DATA if HAVE_DATA else None)}
    for name, row in meta["scores"].items():
        suite = suites[row["suite"].split()[0]]
        if name not in [c.name for c in suite.cases]:
            continue                             # a real-trace case: needs the data to check
        case = suite.case(name)
        assert case.split is not None, f"{name}: a trace case must name its split"
        played = _sha256s(case.split.path())
        assert not played & trained, f"{env_id} is scored on {name}, which shares files with its training data"
    for name in meta.get("not_scored", {}):
        assert name not in meta["scores"]


def test_the_pensieve_agent_is_not_scored_on_fcc_train():
    meta = reference.metadata("ABR-Pensieve-v0")
    assert "fcc_train" not in meta["scores"] and "norway_train" in meta["scores"]
    assert "not held out" in meta["not_scored"]["fcc_train"]


@pytest.mark.skipif(not HAVE_DATA, reason="needs the real ABR traces (shared/data/abr)")
def test_fcc_train_is_flagged_for_the_pensieve_reference_agent():
    (suite,) = get_suites("abr", ABR_DATA)
    spec = __import__("sysgym.benchmark.policies", fromlist=["parse"]).parse("reference")
    assert heldout.overlap(spec, suite.case("fcc_train"), "sysgym/ABR-Pensieve-v0").startswith("trained on 85 of its 85")
    assert heldout.overlap(spec, suite.case("norway_train"), "sysgym/ABR-Pensieve-v0") == ""
    assert heldout.overlap(spec, suite.case("test"), "sysgym/ABR-v0") == ""


def test_reference_metadata_read_back_is_checked(tmp_path, monkeypatch):
    shutil = __import__("shutil")
    for p in Path(reference.FOLDER).glob("ABR-v0.*"):
        shutil.copyfile(p, tmp_path / p.name)
    monkeypatch.setattr(reference, "FOLDER", tmp_path)
    meta = json.loads((tmp_path / "ABR-v0.json").read_text())
    for bad, expected in (({**meta, "env_id": "this:sysgym/ABR-v0"}, "not a registered sysgym environment"),
                          ({**meta, "env_id": 3}, "'env_id' must be a string"),
                          ({**meta, "training_data": {"sha256": [1]}}, "training_data must be")):
        (tmp_path / "ABR-v0.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=expected):
            reference.metadata("ABR-v0")
    (tmp_path / "ABR-v0.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested"):
        reference.metadata("ABR-v0")
