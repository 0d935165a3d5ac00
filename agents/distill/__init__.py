"""Decision-tree and rule distillation of any teacher policy (IRL / VIPER / strategy learning).

Turns a teacher — a PPO checkpoint, a heuristic, robustMPC, the appointment oracle — into a small
decision tree or Boolean rule that acts through the same ``act(obs, info)`` interface, and
measures what it keeps of the teacher.

* DAgger with a beta schedule and the best iterate chosen on selection seeds
  (:func:`~.dagger.distill`; Ross et al. AISTATS 2011; VIPER: Bastani, Pu, Solar-Lezama,
  "Verifiable Reinforcement Learning via Policy Extraction", NeurIPS 2018).
* Action values of any teacher by forking the env (``get_state``/``set_state``) and following the
  teacher (:mod:`.qvalues`), or the teacher's own (the appointment oracle, a PPO critic);
  criticality and the critical-state filter of IRL (Li et al., "Interpretable Modeling of Deep
  Reinforcement Learning Driven Scheduling", arXiv 2403.16293) in :mod:`.critical`.
* Students (:mod:`.students`): CART (scikit-learn), optimal small trees by STreeD (van der Linden
  et al., NeurIPS 2023; cost-sensitive = VIPER's objective exactly) and exhaustive Boolean rules
  (Taub & Pianykh, "An alternative to the black box: Strategy learning", PLoS ONE 2022).
* :class:`TreePolicy` / :class:`RulePolicy`: mask-respecting policies that export as text, DOT,
  PNG and JSON (:func:`load_student` reads them back).

Python API::

    from sysgym.agents.distill import DistillConfig, distill
    result = distill("sysgym/DeepRM-Compact-v0", "heuristic:sjf", "cart", max_depth=3,
                     config=DistillConfig(iterations=5, samples=2000, critical=0.3))
    print(result.policy.text())
    result.policy.save_all("out/")

Command line: ``sysgym distill --teacher ... --env ID --student cart|optimal|rules``.
scikit-learn, pystreed, torch and matplotlib are imported only when a step needs them.
"""

from importlib import import_module
from typing import Any

# Public names and their modules; imported on first use so that ``sysgym.agents.distill.commands``
# (which the CLI imports to build its parser) stays light.
_EXPORTS = {
    "criticality": "critical", "regrets": "critical", "select_critical": "critical",
    "DistillConfig": "dagger", "DistillResult": "dagger", "Iterate": "dagger", "distill": "dagger",
    "EnvMaker": "envs", "DistilledPolicy": "policies", "RulePolicy": "policies", "TreePolicy": "policies",
    "load_student": "policies", "policy_for": "policies", "simulate_q": "qvalues", "Rule": "rules",
    "learn_rule": "rules", "Samples": "samples", "TrainingSet": "samples", "training_set": "samples",
    "StateBank": "snapshots", "snapshot_rows": "snapshots", "CartStudent": "students",
    "OptimalStudent": "students", "RuleStudent": "students", "make_student": "students",
    "Teacher": "teachers", "resolve_teacher": "teachers", "Tree": "tree",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
