"""CrystalBox fidelity and alerts (the paper's Figs. 4, 7 and 9), from one command.

For each family (ABR, CC) and policy (the heuristic, PPO): fit CrystalBox on the training inputs,
then on each held-out input set sample states, fork every queried action on the future the
episode really has (the ground truth), and compare on the [0, 1] scale of the explainer's
normaliser: CrystalBox's predicted means, the naive sampler and the distribution-aware sampler
(``--rollouts`` runs each, future inputs from the training traces only). Factual (pi's action) and
counterfactual queries separately. From the same samples, the alerts: an event fires when a
component's return over the horizon, divided by the explainer's span, falls below the paper's
threshold (appendix A.2 — ABR: quality < 0.55, smoothness < -0.1, rebuffer < -0.25; CC:
throughput < 0.3, latency < -0.075, loss < -0.1); recall and false-positive rate of each method's
alerts against the ground truth's events.

Each block says which inputs trained and which tested (disjoint, checked) and how the policy acted
at the tested states (a policy stuck on one action makes every return constant and every MSE 0).
Prints markdown; ``--results FILE`` keeps the same text; box plots go to ``--out``.

``python -m benchmarks.crystalbox_fidelity --results benchmarks/results/crystalbox/fidelity.txt``
(``--quick`` for tiny budgets; ``--families abr,cc``, ``--policies heuristic,ppo``, ``--train-states``,
``--test-states``, ``--rollouts``, ``--ppo-steps`` or ``--ppo-abr PATH --ppo-cc PATH``)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.crystalbox_common import (
    Report,
    action_summary,
    add_arguments,
    add_crystalbox,
    evaluation_samples,
    held_out_sets,
    quick,
    runs,
)
from sysgym.agents.crystalbox.evaluation import (
    PAPER_THRESHOLDS,
    alert_scores,
    fidelity_header,
    fidelity_rows,
    squared_errors,
)
from sysgym.bench import format_table

SHORT = {"crystalbox": "CB", "naive": "naive", "distribution-aware": "DA"}


def box_plot(path: Path, title: str, components: tuple[str, ...], errors: dict[str, np.ndarray],
             factual: np.ndarray) -> None:
    """One panel per component: squared-error distributions per method (CB = CrystalBox, DA =
    distribution-aware), factual (F) and counterfactual (CF) queries; outliers not drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.2 * len(components), 3.4))
    FigureCanvasAgg(fig)
    names = list(errors)
    for c, component in enumerate(components):
        ax = fig.add_subplot(1, len(components), c + 1)
        data, labels = [], []
        for subset, keep in (("F", factual), ("CF", ~factual)):
            for name in names:
                data.append(errors[name][keep, c])
                labels.append(f"{SHORT.get(name, name)}\n{subset}")
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels, fontsize=6)
        ax.set_title(component, fontsize=9)
        ax.set_ylabel("squared error ([0, 1] scale)" if c == 0 else "")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def alert_rows(samples, estimates: dict[str, np.ndarray], box, thresholds: dict[str, float]) -> list[list[str]]:
    rows = []
    for name, estimate in estimates.items():
        for subset, keep in (("factual", samples.factual), ("counterfactual", ~samples.factual)):
            scores = alert_scores(samples.returns[keep], estimate[keep], box.normaliser, box.components, thresholds)
            for event, s in scores.items():
                rows.append([name, subset, f"{event} < {thresholds[event]:g}", f"{s['positives']}",
                             f"{s['recall']:.2f}", f"{s['fpr']:.2f}"])
    return rows


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = quick(parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None)))
    out = Path(args.out)
    report = Report(args.results)
    report(f"budget: explainer fitted on {args.train_states} training states ({args.epochs} epochs at most, then "
           f"10 of tail fine-tuning); {args.test_states} held-out states per set; {args.rollouts} rollouts per "
           f"sampler estimate, {args.k} clusters; ABR held-out sets cut to {args.trace_limit} traces; seed "
           f"{args.seed}; PPO steps {args.ppo_steps or 'ABR 300k, CC 150k'}")
    start_all = time.perf_counter()
    for family, label, policy, box, fit_s in runs(args, report):
        report(f"\n### {family.env_id}, {label}: explainer fitted on {box.meta['trained_states']} states "
               f"({box.meta['trained_queries']} queries) in {fit_s:.0f} s\n")
        for held in held_out_sets(family, args.trace_limit):
            start = time.perf_counter()
            samples = evaluation_samples(family, policy, held, args.test_states, args.rollouts, args.k, args.seed)
            estimates = add_crystalbox(box, samples)
            rows = fidelity_rows(samples.returns, estimates, samples.factual, box.normaliser, box.components)
            report(f"held-out set {held.name}: {samples.num_states} states, {len(samples)} queries "
                   f"({time.perf_counter() - start:.0f} s); {held.ranges}")
            report(action_summary(samples, box.queries.discrete) + "\n")
            report("fidelity (mean squared error on the [0, 1] scale):\n")
            report(format_table(rows, fidelity_header(box.components)) + "\n")
            report("alerts (events from thresholded returns):\n")
            report(format_table(alert_rows(samples, estimates, box, PAPER_THRESHOLDS[family.kind]),
                                ["method", "queries", "event", "true events", "recall", "FPR"]) + "\n")
            errors = {k: squared_errors(samples.returns, v, box.normaliser) for k, v in estimates.items()}
            box_plot(out / f"fidelity_{family.name}_{label}_{held.name}.png",
                     f"{family.env_id} {label}, held-out {held.name}", box.components, errors, samples.factual)
    report(f"total {time.perf_counter() - start_all:.0f} s")


if __name__ == "__main__":
    main()
