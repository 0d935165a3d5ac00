"""The ```python blocks of README.md and of the docs pages: where each one is, and how long the
library ones take as printed.

    python -m benchmarks.readme_snippets [--only LABEL ...] [--out DIR]

runs every block of "Using sysgym with ..." (RLlib's excepted: they run in ``.venv-rllib``) exactly
as printed, each in a fresh Python process in an empty temporary folder, after the prelude the
README states (``import gymnasium as gym``, ``numpy as np``, ``sysgym``), and writes the seconds
each took (wall clock and the process's CPU time, imports included, interpreter start excluded)
with the machine's 1-minute load average before it to
``benchmarks/results/readme_snippets/times.json``. ``tests/test_readme_snippets.py`` runs every
block, with smaller budgets, through :func:`python_blocks`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# The hand-written docs pages (the README's sections moved there, issue #22): a page's "# " title
# names its blocks as a README "## " heading did. docs/envs/ is generated and not read.
DOC_PAGES = ("docs/*.md", "docs/families/*.md", "docs/papers/*.md")
OUT = ROOT / "benchmarks" / "results" / "readme_snippets"
PRELUDE = "import gymnasium as gym\nimport numpy as np\nimport sysgym\n"
LIBRARIES = "Using sysgym with ..."


@dataclass(frozen=True)
class Block:
    """One ```python block: its section (README ``## `` or a docs page's ``# `` title), in "Using
    sysgym with ..." the bold lead-in (``**TorchRL.**``) of the paragraph above it (elsewhere
    empty), its index among the section's python blocks, its first line number in ``source`` (a
    path relative to the repository) and its code."""

    section: str
    label: str
    index: int
    line: int
    code: str
    source: str = "README.md"

    @property
    def name(self) -> str:
        return f"{self.section} / {self.label}" if self.label else f"{self.section} #{self.index}"


def python_blocks(text: str | None = None) -> list[Block]:
    """Every ```python block of ``text`` (read as README.md), or of README.md and the docs pages."""
    if text is not None:
        return _blocks(text, "README.md", "## ")
    blocks = _blocks(README.read_text(encoding="utf-8"), "README.md", "## ")
    for pattern in DOC_PAGES:
        for path in sorted(ROOT.glob(pattern)):
            blocks += _blocks(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix(), "# ")
    return blocks


def _blocks(text: str, source: str, heading: str) -> list[Block]:
    blocks: list[Block] = []
    section, label, index, fence, start, body = "", "", 0, None, 0, []
    for number, line in enumerate(text.splitlines(), 1):
        if fence is not None:
            if line.startswith("```"):
                if fence == "python":
                    blocks.append(Block(section, label, index, start, "\n".join(body) + "\n", source))
                    index += 1
                fence = None
            else:
                body.append(line)
        elif line.startswith("```"):
            fence, start, body = line[3:].strip(), number + 1, []
        elif line.startswith(heading):
            section, label, index = line[len(heading):].strip(), "", 0
        elif section == LIBRARIES and (bold := re.match(r"\*\*(.+?)\*\*", line)) is not None:
            label = bold.group(1).rstrip(".")
    if fence is not None:
        raise ValueError(f"{source}: the ``` block opened on line {start - 1} is never closed")
    return blocks


def library_blocks() -> list[Block]:
    """The blocks of "Using sysgym with ...", RLlib's excepted."""
    return [b for b in python_blocks() if b.section == LIBRARIES and "rllib" not in b.code.lower()]


def time_block(block: Block, timeout: float = 1800) -> dict[str, object]:
    """Run one block as printed in a fresh process in an empty folder; its seconds and status."""
    timer = ("import time as _t\n_start, _cpu = _t.perf_counter(), _t.process_time()\n" + PRELUDE + block.code +
             "\nprint('SNIPPET_SECONDS', _t.perf_counter() - _start, _t.process_time() - _cpu)\n")
    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", timer], cwd=folder, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = re.findall(r"SNIPPET_SECONDS ([0-9.]+) ([0-9.]+)", done.stdout)
    tail = (done.stderr.strip().splitlines() or [""])[-1]
    wall, cpu = (round(float(s), 1) for s in seconds[-1]) if seconds else (None, None)
    return {"name": block.name, "line": block.line, "returncode": done.returncode,
            "seconds": wall, "cpu_seconds": cpu, **({"error": tail} if done.returncode else {})}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", help="a block label, e.g. TorchRL (repeatable)")
    parser.add_argument("--out", type=Path, default=OUT, help="results folder (default %(default)s)")
    args = parser.parse_args(argv)
    blocks = [b for b in library_blocks() if not args.only or b.label in args.only]
    if not blocks:
        parser.error(f"no library block labelled {args.only}; labels: {[b.label for b in library_blocks()]}")
    rows = []
    for block in blocks:
        load = os.getloadavg()[0]
        row = {**time_block(block), "load_1min_before": round(load, 2)}
        rows.append(row)
        print(f"{row['seconds']!s:>8} s  (CPU {row['cpu_seconds']!s:>6} s)  rc {row['returncode']}  "
              f"load {load:5.2f}  {block.name}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"command": "python -m benchmarks.readme_snippets" + "".join(f" --only {o!r}" for o in args.only or []),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
              "python": platform.python_version(), "snippets": rows}
    target = args.out / "times.json"
    previous = json.loads(target.read_text()) if target.exists() and args.only else None
    if previous:   # --only updates those rows and keeps the others
        kept = [r for r in previous["snippets"] if r["name"] not in {row["name"] for row in rows}]
        result["snippets"] = kept + rows
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(target)
    print(f"wrote {target}")
    return 0 if all(r["returncode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
