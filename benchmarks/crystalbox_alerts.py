"""CrystalBox alerts (the paper's Figs. 7 and 9): detecting future events from predicted returns.

An event fires when a component's return over the horizon, divided by the explainer's span
(:meth:`~sysgym.agents.crystalbox.normalise.Normaliser.signed`), falls below the paper's threshold
— ABR: low quality (quality < 0.55), quality change (smoothness < -0.1), stall (rebuffer < -0.25);
CC: low throughput (< 0.3), latency (< -0.075), loss (< -0.1). On held-out states (the same
protocol as ``crystalbox_fidelity``) each method's estimate is thresholded and compared with the
ground truth's: recall (events caught) and false-positive rate (alarms on queries without the
event), factual and counterfactual queries separately.

``python -m benchmarks.crystalbox_alerts [--quick] [same budget options as crystalbox_fidelity]``
"""

from __future__ import annotations

import argparse

from benchmarks.crystalbox_common import (
    add_arguments,
    add_crystalbox,
    evaluation_samples,
    held_out_sets,
    quick,
    runs,
)
from sysgym.agents.crystalbox.evaluation import PAPER_THRESHOLDS, alert_scores
from sysgym.bench import format_table


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = quick(parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None)))
    for family, label, policy, box, _ in runs(args):
        thresholds = PAPER_THRESHOLDS[family.kind]
        for held in held_out_sets(family, args.trace_limit):
            samples = evaluation_samples(family, policy, held, args.test_states, args.rollouts, args.k, args.seed)
            rows = []
            for name, estimate in add_crystalbox(box, samples).items():
                for subset, keep in (("factual", samples.factual), ("counterfactual", ~samples.factual)):
                    scores = alert_scores(samples.returns[keep], estimate[keep], box.normaliser, box.components,
                                          thresholds)
                    for event, s in scores.items():
                        rows.append([name, subset, f"{event} < {thresholds[event]:g}", f"{s['positives']}",
                                     f"{s['recall']:.2f}", f"{s['fpr']:.2f}"])
            print(f"\n### {family.env_id}, {label}, held-out {held.name}: {samples.num_states} states\n")
            print(format_table(rows, ["method", "queries", "event", "true events", "recall", "FPR"]), flush=True)


if __name__ == "__main__":
    main()
