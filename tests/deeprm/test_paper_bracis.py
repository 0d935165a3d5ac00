"""The BRACIS'21 reproduction script (benchmarks/paper_bracis.py): its statistics and a tiny run."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from benchmarks.paper_bracis import compare, summary


def test_confidence_interval_and_t_tests_by_hand():
    # mean 2, sample std 1, n 3: half-width t(0.975, 2) / sqrt(3) = 4.303 / 1.732 = 2.484
    s = summary([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["n"] == 3 and math.isclose(s["ci95"], 2.484, abs_tol=1e-3)
    # equal variances and sizes: t = 3 / sqrt(2/3) = 3.674 on 4 degrees of freedom for both tests,
    # between t(0.975, 4) = 2.776 and t(0.995, 4) = 4.604, so 0.01 < p < 0.05
    c = compare([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert 0.01 < c["p_welch"] < 0.05 and math.isclose(c["p_welch"], c["p_student"])
    assert c["verdict"] == "reproduced"
    assert compare([4.0, 5.0, 6.0], [1.0, 2.0, 3.0])["verdict"].startswith("not reproduced (significantly")
    assert compare([1.0, 5.0, 3.0], [4.0, 2.0, 6.0])["verdict"] == "not reproduced (no significant difference)"
    # unequal variances: Welch's and Student's differ
    c = compare([1.0, 1.1, 0.9, 1.0], [3.0, 9.0, -1.0, 5.0, 7.0, 2.0])
    assert c["p_welch"] != c["p_student"]


def test_a_tiny_run_writes_its_tables_and_figure(tmp_path):
    out = tmp_path / "bracis"
    cmd = [sys.executable, "-m", "benchmarks.paper_bracis", "--seeds", "1", "--image-seeds", "1", "--steps", "800",
           "--csr-steps", "800", "1600", "--scenarios", "1", "9", "--episodes", "4", "--episode-length", "30",
           "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p.name for p in out.iterdir()} == {"results.json", "results.md", "analysis.json", "bracis.png"}
    results = json.loads((out / "results.json").read_text())
    assert {(r["variant"], r["scenario"]) for r in results["runs"]} == {("image", 1), ("image", 9), ("csr", 1),
                                                                        ("csr", 9)}
    assert {t["scenario"] for t in results["transfer"]} == {1, 9}
    # one value per evaluation episode
    assert all(len(e["mean_slowdown"]) == 4 for r in results["runs"] for e in r["evaluations"].values())
    text = (out / "results.md").read_text()
    assert "claim: CSR < Image" in text and "claim: transferred < specialised" in text
