"""The sysgym command line: list and bench."""

import subprocess
import sys

import sysgym
from sysgym.cli import main


def test_list_shows_every_id_with_its_spaces(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for entry in sysgym.ENVIRONMENTS:
        assert entry.id in out and entry.description in out
    assert "Discrete(11)" in out and "Box(123,)" in out


def test_bench_prints_a_table_for_one_env(capsys):
    assert main(["bench", "--env", "sysgym/DeepRM-Compact-v0", "--steps", "200", "--calls", "2",
                 "--num-envs", "8"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "DeepRM-Compact-v0" in line)
    assert len([c for c in row.split("|") if c.strip()]) == 3


def test_console_entry_point_and_module_run():
    result = subprocess.run([sys.executable, "-m", "sysgym", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and sysgym.__version__ in result.stdout
