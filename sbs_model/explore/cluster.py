"""Where the shards of a sweep run: in this process, or on a Dask distributed cluster.

* :func:`iter_local`: one process, no cluster, nothing started (the default of ``sbs explore``).
* :class:`DaskEngine`: ``jobs`` worker processes of a local cluster started here (loopback only,
  one thread each, ``cores // jobs`` numba threads each), or an existing cluster reached by its
  scheduler address (``tcp://host:8786``) or scheduler file, started with ``dask scheduler`` and
  ``dask worker``.

Both yield ``(unit, shard record)`` as shards finish (the Dask engine is :class:`sbs_model.cluster.DaskEngine`,
shared with ``sbs cosim``).  The weights and images are scattered once to
every worker as a :class:`~sbs_model.explore.shards.Shipment` and checked by their SHA-256 on arrival.
Dask re-runs the shards of a worker that dies on the remaining workers; a lost scheduler ends the
sweep with :class:`ClusterError` (finished shards are already on disk on the submitting machine).
"""
from __future__ import annotations

from dataclasses import dataclass

from sbs_model import cluster
from sbs_model.cluster import ClusterError
from sbs_model.explore.shards import Shipment, run_shard


@dataclass(frozen=True)
class Unit:
    """One shard to evaluate: run id, image range and what the evaluator needs besides the arrays."""

    rid: str
    start: int
    stop: int
    net: object
    datapath: object
    seed: int
    noise: float
    batch: int


def iter_local(units, shipment: Shipment, evaluator, progress: bool, skip: set):
    """Evaluate the units one after another in this process (numba uses every core)."""
    for u in units:
        if u.rid in skip:
            continue
        yield u, run_shard(shipment, shipment.weights_sha, shipment.images_sha, u.net, u.datapath, u.seed,
                           u.noise, u.batch, u.start, u.stop, evaluator, None, progress)


class DaskEngine(cluster.DaskEngine):
    """:class:`sbs_model.cluster.DaskEngine` running explore shards (``cores // jobs`` numba threads each
    on a local cluster)."""

    kept = "finished shards and runs are kept"

    def describe(self) -> str:
        if self.cluster is not None:
            return (f"local Dask cluster: {self.jobs} worker processes on 127.0.0.1, {self.threads} numba "
                    f"thread{'s' if self.threads > 1 else ''} each")
        return super().describe()

    def iter(self, units, shipment: Shipment, evaluator, skip: set, poll: float = 0.2):
        """Submit every unit and yield ``(unit, record)`` as they finish; units whose run id enters ``skip``
        are cancelled."""
        return self.run(run_shard, shipment, units,
                        lambda u: (shipment.weights_sha, shipment.images_sha, u.net, u.datapath, u.seed, u.noise,
                                   u.batch, u.start, u.stop, evaluator, self.threads, False),
                        skip=lambda u: u.rid in skip, name=lambda u: f"shard [{u.start}, {u.stop}) of run {u.rid}",
                        poll=poll)


__all__ = ["ClusterError", "DaskEngine", "Unit", "iter_local"]
