"""The files of one ``sysgym distill`` run, written atomically as the run goes.

After every DAgger iteration :meth:`RunFiles.iterate` writes that iterate's student
(``iterations/<kind>_<i>.json``), the best iterate so far as ``<kind>.json`` / ``<kind>.txt``,
``iterations.csv`` and a ``report.md`` saying how far the run got, so an interrupted run keeps
every finished iteration; :meth:`RunFiles.finish` writes the final exports and report.
"""

from __future__ import annotations

from pathlib import Path

from sysgym.agents.runs import atomic_write_text

from .dagger import DistillResult, Iterate, best_iterate

LOG_KEYS = ["iteration", "beta", "aggregate", "kept", "eval_return", "eval_metric", "size", "seconds"]


class RunFiles:
    """``out``: a folder checked by :func:`~sysgym.agents.runs.prepare_out_dir`; ``head``: the
    report's first line; ``seeds``: its seed-range lines; ``total``: iterations asked for."""

    def __init__(self, out: Path, head: str, seeds: list[str], total: int):
        self.out = Path(out)
        self.head = head
        self.seeds = list(seeds)
        self.total = total
        self.finished: list[Iterate] = []

    def iterate(self, it: Iterate, finished: list[Iterate]) -> None:
        """Save a finished iteration (the ``on_iterate`` callback of :func:`~.dagger.distill`)."""
        self.finished = list(finished)
        self._save([it], f"running: {len(self.finished)} of {self.total} iterations finished")

    def _save(self, new: list[Iterate], status: str) -> None:
        for it in new:
            it.policy.save(self.out / "iterations" / f"{it.policy.kind}_{it.iteration}.json")
        best = best_iterate(self.finished)
        policy = self.finished[best].policy
        atomic_write_text(self.out / f"{policy.kind}.txt", policy.text())
        policy.save(self.out / f"{policy.kind}.json")
        self.write_log(best)
        self.write_report(status)

    def write_log(self, best: int) -> None:
        rows = [it.row() for it in self.finished]
        lines = [",".join(LOG_KEYS)] + [",".join(str(r[k]).replace(",", ";") for k in LOG_KEYS) for r in rows]
        atomic_write_text(self.out / "iterations.csv", "\n".join(lines) + f"\n# best iterate: {best}\n")

    def write_report(self, status: str, table: str | None = None) -> None:
        """``report.md``: the head, the seed ranges, a status line and the comparison table."""
        parts = [self.head, "", *self.seeds, ""]
        if self.finished:
            best = best_iterate(self.finished)
            it = self.finished[best]
            parts.insert(1, f"student: iterate {best}, the best selection return ({it.eval_return:.4g}) of "
                            f"{len(self.finished)} finished iterations")
        parts.append(status if table is None else table)
        atomic_write_text(self.out / "report.md", "\n".join(parts).rstrip("\n") + "\n")

    def finish(self, result: DistillResult, table: str) -> dict[str, Path]:
        """The final exports (text, DOT, PNG, JSON), log and report."""
        self.finished = list(result.iterates)
        paths = result.policy.save_all(self.out)
        self.write_log(result.best)
        self.write_report("finished", table)
        return paths

    def interrupted(self) -> str:
        """Mark the report as interrupted; what was kept, for the one line printed on exit."""
        if not self.finished:
            self.write_report("interrupted before the first iteration finished")
            return f"no DAgger iteration had finished; nothing but {self.out / 'report.md'} was written"
        # written again in full: the interrupt may have cut the last iteration's saving short
        self._save(self.finished, f"interrupted after {len(self.finished)} of {self.total} iterations "
                                  "(no test scores)")
        best = best_iterate(self.finished)
        kind = self.finished[best].policy.kind
        return (f"kept {len(self.finished)} of {self.total} DAgger iterations in {self.out / 'iterations'}; "
                f"best so far (iterate {best}): {self.out / (kind + '.json')}")
