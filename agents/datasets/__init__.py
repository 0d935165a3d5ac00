"""Offline datasets in Farama Minari's format (issue #25): collect episodes of any policy on any
sysgym env with the native vector env and write them as a local Minari dataset (no hub).

Needs the ``datasets`` extra (``pip install "sysgym[datasets]"``: minari with its create and hdf5
parts). The envs never import minari; only this package does.
"""

from sysgym.agents.datasets.collect import collect, dataset_id_for, load

__all__ = ["collect", "dataset_id_for", "load"]
