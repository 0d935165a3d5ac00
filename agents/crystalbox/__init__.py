"""CrystalBox: decomposed future-return explanations for any policy on every sysgym environment.

Reference: S. Patel, S. Abdu Jyothi, N. Narodytska, "CrystalBox: Future-Based Explanations for
Input-Driven Deep RL Systems", AAAI 2024. For a fixed policy pi, a state s and an action a, an
explanation is the vector of decomposed returns Q_c^pi(s, a), one per reward component c
(``env.unwrapped.reward_components``: ABR quality / rebuffer / smoothness, CC throughput /
latency / loss, DeepRM running / window / backlog, DAG-EGS width / slack / invalid, appointments
idle / lateness / invalid), each the discounted sum over the next ``t_max`` decisions of that
component in reward units. It says *why* pi prefers an action and why not another.

Modules, one job each:

* :mod:`.forking` — per-component returns of any action by forking the env (``get_state`` /
  ``set_state``), the factual trajectory untouched;
* :mod:`.actions` — which actions are queried (all valid ones, or a perturbation set);
* :mod:`.collect` — roll out pi on the native vector env and sample states with their returns;
* :mod:`.normalise` — per-component scaling to [0, 1] fitted on the training data;
* :mod:`.predictor` — the torch network (shared trunk, one Gaussian tail per component, NLL);
* :mod:`.model` — :class:`CrystalBox`, the fitted explainer, saved as plain data;
* :mod:`.explain` — :func:`explain`, tables, "why A and not B", the bar chart;
* :mod:`.samplers` — the sampling baselines (naive, distribution-aware) on replaced future inputs;
* :mod:`.evaluation` — fidelity and alert scores against ground truth;
* :mod:`.commands` — ``sysgym explain``.

Python API::

    import gymnasium as gym
    from sysgym.agents.crystalbox import CrystalBox, explain
    from sysgym.agents.heuristics.abr import RobustMPC

    box, samples = CrystalBox.fit(RobustMPC, "sysgym/ABR-v0", states=2000)
    env = gym.make("sysgym/ABR-v0"); obs, info = env.reset(seed=1)
    e = explain(box, (obs, info))
    print(e.table()); e.plot("why.png")
"""

from .actions import ActionQueries
from .collect import collect
from .explain import Contrast, Explanation, explain
from .model import CrystalBox
from .normalise import Normaliser
from .predictor import PredictorConfig
from .samplers import DistributionAwareSampler, FutureInputs, NaiveSampler
from .samples import Samples

__all__ = ["ActionQueries", "Contrast", "CrystalBox", "DistributionAwareSampler", "Explanation", "FutureInputs",
           "NaiveSampler", "Normaliser", "PredictorConfig", "Samples", "collect", "explain"]
