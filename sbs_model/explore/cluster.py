"""Where the shards of a sweep run: in this process, or on a Dask distributed cluster.

* :func:`iter_local`: one process, no cluster, nothing started (the default of ``sbs explore``).
* :class:`DaskEngine`: ``jobs`` worker processes of a local cluster started here (loopback only,
  one thread each, ``cores // jobs`` numba threads each), or an existing cluster reached by its
  scheduler address (``tcp://host:8786``) or scheduler file, started with ``dask scheduler`` and
  ``dask worker``.

Both yield ``(unit, shard record)`` as shards finish.  The weights and images are scattered once to
every worker as a :class:`~sbs_model.explore.shards.Shipment` and checked by their SHA-256 on arrival.
Dask re-runs the shards of a worker that dies on the remaining workers; a lost scheduler ends the
sweep with :class:`ClusterError` (finished shards are already on disk on the submitting machine).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sbs_model.explore.shards import ContentMismatch, Shipment, run_shard


class ClusterError(RuntimeError):
    """The cluster failed in a way the sweep cannot recover from (lost scheduler, shard that kills
    every worker it runs on, weights or images that arrived changed)."""


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


class DaskEngine:
    """A Dask client on a local cluster (``jobs``) or on an existing one (``address`` / ``scheduler_file``).

    Use as a context manager; the local cluster (if any) is closed on exit.  ``timeout`` (s) bounds
    connecting to a scheduler and waiting for its first worker."""

    def __init__(self, jobs: int | None = None, address: str | None = None, scheduler_file: str | None = None,
                 timeout: float = 30.0):
        if sum(x is not None for x in (jobs, address, scheduler_file)) != 1:
            raise ValueError("give one of --jobs, --cluster, --scheduler-file")
        self.jobs, self.address, self.scheduler_file, self.timeout = jobs, address, scheduler_file, timeout
        self.client = self.cluster = None
        self.threads = None
        self._log_level = None
        self._address = None

    # -------------------------------------------------------------- connection
    def __enter__(self):
        from distributed import Client, LocalCluster

        log = logging.getLogger("distributed")
        self._log_level = log.level
        log.setLevel(logging.CRITICAL)  # worker deaths and reconnects are reported by the sweep itself
        try:
            if self.jobs is not None:
                self.threads = max(1, (os.cpu_count() or 1) // self.jobs)
                self.cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None,
                                            silence_logs=logging.CRITICAL)
                self.client = Client(self.cluster, timeout=self.timeout)
            else:
                self.client = self._connect(Client)
                try:
                    self.client.wait_for_workers(1, timeout=self.timeout)
                except (TimeoutError, OSError):
                    where = self.address or f"the scheduler of {self.scheduler_file}"
                    raise ValueError(f"{self._arg()}: {where} has no workers after {self.timeout:g} s; start "
                                     f"some with: dask worker {self.scheduler_address or '<address>'}") from None
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self._address = self.client.scheduler.address
        return self

    def _arg(self) -> str:
        return f"--cluster {self.address}" if self.address else f"--scheduler-file {self.scheduler_file}"

    def _connect(self, Client):
        if self.scheduler_file is not None and not Path(self.scheduler_file).is_file():
            raise ValueError(f"--scheduler-file {self.scheduler_file}: not a file (dask scheduler "
                             "--scheduler-file FILE writes it)")
        try:
            if self.address is not None:
                return Client(self.address, timeout=self.timeout)
            return Client(scheduler_file=self.scheduler_file, timeout=self.timeout)
        except (OSError, TimeoutError, ValueError) as e:
            raise ValueError(f"{self._arg()}: no Dask scheduler answered within {self.timeout:g} s "
                             f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None

    def __exit__(self, *exc):
        for obj in (self.client, self.cluster):
            if obj is not None:
                try:
                    obj.close(timeout=5)
                except Exception:  # noqa: BLE001 - a dead scheduler cannot be closed cleanly; nothing to keep
                    pass
        self.client = self.cluster = None
        if self._log_level is not None:
            logging.getLogger("distributed").setLevel(self._log_level)
        return False

    @property
    def scheduler_address(self) -> str | None:
        return None if self.client is None else self.client.scheduler.address

    def n_workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def describe(self) -> str:
        if self.cluster is not None:
            return (f"local Dask cluster: {self.jobs} worker processes on 127.0.0.1, {self.threads} numba "
                    f"thread{'s' if self.threads > 1 else ''} each")
        return f"Dask cluster {self.scheduler_address}: {self.n_workers()} workers"

    # -------------------------------------------------------------- running
    def _lost(self, why: str) -> ClusterError:
        return ClusterError(f"lost the Dask scheduler {self._address} ({why}); finished shards and "
                            "runs are kept: start the cluster again and rerun with --resume")

    def iter(self, units, shipment: Shipment, evaluator, skip: set, poll: float = 0.2):
        """Submit every unit (in order: Dask starts them roughly first come, first served) and yield
        ``(unit, record)`` as they finish; units whose run id enters ``skip`` are cancelled."""
        from distributed import wait
        from distributed.client import FuturesCancelledError

        try:
            from distributed import KilledWorker
        except ImportError:  # older layout
            from distributed.scheduler import KilledWorker
        from concurrent.futures import CancelledError

        client = self.client
        ship = client.scatter(shipment, broadcast=True, hash=False)
        futs = {}
        for u in units:
            f = client.submit(run_shard, ship, shipment.weights_sha, shipment.images_sha, u.net, u.datapath,
                              u.seed, u.noise, u.batch, u.start, u.stop, evaluator, self.threads, False,
                              pure=False)
            futs[f] = u
        pending = set(futs)
        try:
            while pending:
                if client.status != "running":
                    raise self._lost(f"client {client.status}")
                try:
                    done, _ = wait(list(pending), timeout=poll, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                except (FuturesCancelledError, CancelledError) as e:
                    raise self._lost(str(e).splitlines()[-1] if str(e) else "futures cancelled") from None
                for f in done:
                    pending.discard(f)
                    u = futs[f]
                    if u.rid in skip:
                        futs.pop(f)
                        f.release()
                        continue
                    if f.status == "cancelled":
                        raise self._lost("its shards were cancelled")
                    try:
                        exc = f.exception() if f.status == "error" else None
                        rec = None if exc is not None else f.result()
                    except (FuturesCancelledError, CancelledError, OSError) as e:
                        raise self._lost(f"{type(e).__name__} while fetching a result") from None
                    if exc is not None:
                        if isinstance(exc, KilledWorker):
                            raise ClusterError(f"shard [{u.start}, {u.stop}) of run {u.rid} was running on every "
                                               f"worker that died while evaluating it ({exc}); finished shards "
                                               "are kept (--resume)") from None
                        if isinstance(exc, ContentMismatch):
                            raise ClusterError(str(exc)) from None
                        raise exc
                    # forget the key now: a worker dying later must not make Dask recompute a shard we hold
                    futs.pop(f)
                    f.release()
                    yield u, rec
                    for g in [g for g in pending if futs[g].rid in skip]:
                        g.cancel()
                        pending.discard(g)
                        futs.pop(g)
                        g.release()
                del done
        finally:
            remaining = [f for f in pending]
            if remaining and client.status == "running":
                client.cancel(remaining)
            futs.clear()
