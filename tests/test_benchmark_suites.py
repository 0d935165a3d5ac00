"""Suite definitions and identities: the hash covers the definition and the input files' bytes."""

import dataclasses
import re
import shutil

import pytest

from sysgym.benchmark import suites
from sysgym.benchmark.suites import (
    EVAL_SEED,
    Case,
    External,
    Metric,
    Reference,
    case_hash,
    get_suites,
)

METRIC = Metric("cost", "lower", "cost")
REFS = (Reference("random", "random", "heuristic:random"), Reference("alternate", "baseline", "heuristic:alternate"))


def _case(root, **changes):
    case = Case("c", "sysgym/Appointments-P1-v0", (), 10, REFS, inputs=(External(str(root), "data"),))
    return dataclasses.replace(case, **changes)


def test_hash_follows_the_input_bytes_not_where_the_folder_lives(tmp_path):
    data = tmp_path / "a" / "data"
    data.mkdir(parents=True)
    (data / "x.txt").write_text("1 2 3\n")
    (data / "y.txt").write_text("4 5 6\n")
    first = case_hash(_case(tmp_path / "a"), METRIC)
    assert case_hash(_case(tmp_path / "a"), METRIC) == first
    shutil.copytree(data, tmp_path / "b" / "data")                     # same bytes elsewhere
    assert case_hash(_case(tmp_path / "b"), METRIC) == first
    (data / "y.txt").write_text("4 5 7\n")                                # one byte changed
    changed = case_hash(_case(tmp_path / "a"), METRIC)
    assert changed != first
    (data / "z.txt").write_text("")                                       # a file added
    assert case_hash(_case(tmp_path / "a"), METRIC) not in (first, changed)


def test_hash_follows_the_definition(tmp_path):
    (tmp_path / "data").mkdir()
    base = case_hash(_case(tmp_path), METRIC)
    assert case_hash(_case(tmp_path, episodes=11), METRIC) != base
    assert case_hash(_case(tmp_path, seed=EVAL_SEED + 1), METRIC) != base
    assert case_hash(_case(tmp_path, env_kwargs=(("noise", 0.1),)), METRIC) != base
    assert case_hash(_case(tmp_path), Metric("cost", "higher", "cost")) != base


def test_shipped_suite_identity_changes_when_a_shipped_file_changes(tmp_path, monkeypatch):
    suite = get_suites("dag")[0]
    identity = suite.identity()
    assert re.fullmatch(r"dag v1 sha256:[0-9a-f]{12}", identity)
    assert get_suites("dag")[0].identity() == identity                 # stable across builds
    copy = tmp_path / "traces"
    shutil.copytree(suites.trace_path("dag"), copy / "dag")
    monkeypatch.setattr(suites, "trace_path", lambda *parts: copy.joinpath(*parts))
    assert suite.identity() == identity
    with open(copy / "dag" / "layered_n40.dot", "a") as f:
        f.write("// one more comment\n")
    assert suite.identity() != identity


def test_every_suite_evaluates_on_seeds_disjoint_from_training():
    for suite in get_suites("all"):
        assert suite.primary.direction in ("lower", "higher")
        for case in suite.cases:
            assert case.seed == EVAL_SEED >= 10_000_000
            roles = [r.role for r in case.references]
            assert roles.count("random") == 1 and "baseline" in roles
            if case.reset_option is not None:
                assert len(case.option_values) == case.episodes


def test_suite_errors():
    with pytest.raises(ValueError, match="unknown suite"):
        get_suites("atari")
    with pytest.raises(ValueError, match="--abr-data"):
        get_suites("deeprm", abr_data="/somewhere")
    with pytest.raises(FileNotFoundError, match="video_envivio"):
        get_suites("abr", abr_data="/no/such/folder")
