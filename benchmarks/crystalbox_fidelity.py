"""CrystalBox fidelity (the paper's Fig. 4): squared error to ground-truth returns per component.

For each family (ABR, CC) and policy (the heuristic, PPO): fit CrystalBox on the training inputs,
then on each held-out input set sample states, fork every queried action on the future the
episode really has (the ground truth), and compare on the [0, 1] scale of the explainer's
normaliser: CrystalBox's predicted means, the naive sampler and the distribution-aware sampler
(``--rollouts`` runs each, future inputs from the training traces only). Factual (pi's action) and
counterfactual queries separately. Prints markdown tables; writes box plots to ``--out``.

``python -m benchmarks.crystalbox_fidelity [--quick] [--families abr,cc] [--policies heuristic,ppo]
[--train-states N] [--test-states N] [--rollouts N] [--ppo-steps N | --ppo-abr PATH --ppo-cc PATH]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.crystalbox_common import (
    add_arguments,
    add_crystalbox,
    evaluation_samples,
    held_out_sets,
    quick,
    runs,
)
from sysgym.agents.crystalbox.evaluation import fidelity_header, fidelity_rows, squared_errors
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


def main(quick_mode: bool = False, argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = quick(parser.parse_args(argv if argv is not None else (["--quick"] if quick_mode else None)))
    out = Path(args.out)
    for family, label, policy, box, fit_s in runs(args):
        print(f"\n### {family.env_id}, {label}: explainer fitted on {box.meta['trained_states']} states "
              f"({box.meta['trained_queries']} queries) in {fit_s:.0f} s\n", flush=True)
        for held in held_out_sets(family, args.trace_limit):
            start = time.perf_counter()
            samples = evaluation_samples(family, policy, held, args.test_states, args.rollouts, args.k, args.seed)
            estimates = add_crystalbox(box, samples)
            rows = fidelity_rows(samples.returns, estimates, samples.factual, box.normaliser, box.components)
            print(f"held-out set {held.name}: {samples.num_states} states, {len(samples)} queries "
                  f"({time.perf_counter() - start:.0f} s)\n")
            print(format_table(rows, fidelity_header(box.components)) + "\n", flush=True)
            errors = {k: squared_errors(samples.returns, v, box.normaliser) for k, v in estimates.items()}
            box_plot(out / f"fidelity_{family.name}_{label}_{held.name}.png",
                     f"{family.env_id} {label}, held-out {held.name}", box.components, errors, samples.factual)


if __name__ == "__main__":
    main()
