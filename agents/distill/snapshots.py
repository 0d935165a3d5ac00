"""Forking states of a native vector env through its public ``get_state`` / ``set_state``.

The row machinery lives with the snapshots themselves (:class:`sysgym.envs.snapshot.RowBank`,
:func:`~sysgym.envs.snapshot.take_rows`): rows of snapshots of one env configuration are stacked
into a snapshot for an env with as many sub-envs as rows, which is how one state is copied into
many sub-envs (one per action and rollout) for simulated action values.
"""

from sysgym.envs.snapshot import RowBank as StateBank
from sysgym.envs.snapshot import take_rows as snapshot_rows

__all__ = ["StateBank", "snapshot_rows"]
