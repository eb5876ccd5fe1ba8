"""Shards of a long job (``sbs explore``, ``sbs cosim``) in this process or on a Dask distributed cluster.

What both commands share:

* :func:`weights_sha256` and :func:`images_sha256`: content hashes the arrays are checked by on arrival;
* :func:`split` and :func:`plan` cut an image range into shards and reuse finished shards that still fit;
* :func:`worker_label` names the process that evaluated a shard, :func:`throughput` sums images and
  evaluation seconds per worker;
* :class:`DaskEngine`: ``jobs`` worker processes of a local cluster started here (loopback only, one task
  thread each), or an existing cluster reached by its scheduler address (``tcp://host:8786``) or scheduler
  file, started with ``dask scheduler`` and ``dask worker``.  :meth:`DaskEngine.run` sends the arrays the
  shards need once to every worker and yields each shard's result as it finishes.  Dask re-runs the shards
  of a worker that dies on the remaining workers; a lost scheduler ends the job with :class:`ClusterError`
  (what finished is already on disk on the submitting machine).

Dask is imported only inside :class:`DaskEngine`: one process with no cluster needs nothing started.
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
from pathlib import Path

import numpy as np


def weights_sha256(weights: dict) -> str:
    """Content hash of a weight dict ``{layer: array}`` (layer order, dtype, shape and bytes)."""
    h = hashlib.sha256()
    for k in sorted(weights, key=int):
        w = np.ascontiguousarray(weights[k])
        h.update(f"{int(k)}:{w.dtype.str}:{w.shape}".encode())
        h.update(w.tobytes())
    return h.hexdigest()


def images_sha256(images, labels) -> str:
    """Content hash of the evaluated images and labels (dtype, shape and bytes of both)."""
    h = hashlib.sha256()
    for a in (images, labels):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class ClusterError(RuntimeError):
    """The cluster failed in a way the job cannot recover from (lost scheduler, shard that kills every
    worker it runs on, arrays that arrived changed)."""


class ContentMismatch(RuntimeError):
    """The arrays that reached a worker are not the ones the job was started with (content hash differs)."""


def worker_label() -> str:
    """Who evaluated a shard: ``host/name`` of the Dask worker, else ``host/pid<pid>`` (one process)."""
    host = socket.gethostname()
    w = None
    if "distributed" in sys.modules:   # only a Dask worker process has it loaded and a worker to name
        try:
            w = sys.modules["distributed"].get_worker()
        except ValueError:
            w = None
    if w is None:
        return f"{host}/pid{os.getpid()}"
    name = str(w.name)
    return name if "://" in name else f"{host}/worker-{name}"


def split(start: int, stop: int, size: int) -> list:
    """``[start, stop)`` cut into consecutive pieces of at most ``size`` images."""
    return [(a, min(stop, a + size)) for a in range(start, stop, size)]


def plan(n: int, size: int, finished, start: int = 0) -> tuple[list, list]:
    """Cover ``[start, n)`` with finished shards where they fit (disjoint, in order) and new shards of at
    most ``size`` images in the gaps: ``(finished shards used, shards to compute)``.  A changed shard size
    between two invocations therefore reuses every finished shard that still fits."""
    used, todo, pos = [], [], start
    for a, b in sorted(set(finished)):
        if a < pos or b > n or a >= b:
            continue
        todo += split(pos, a, size)
        used.append((a, b))
        pos = b
    todo += split(pos, n, size)
    return used, todo


def throughput(shards, over: str = "the finished runs of this grid") -> dict:
    """Images per second of every worker over the given shard records (``start``, ``stop``, ``worker``,
    ``seconds``): evaluation time only, so the sum over workers is the job's aggregate rate."""
    per: dict = {}
    for sh in shards:
        if sh.get("seconds") is None or sh.get("worker") is None:
            continue
        w = per.setdefault(sh["worker"], {"shards": 0, "images": 0, "seconds": 0.0})
        w["shards"] += 1
        w["images"] += int(sh["stop"]) - int(sh["start"])
        w["seconds"] += float(sh["seconds"])
    for w in per.values():
        w["images_per_s"] = w["images"] / w["seconds"] if w["seconds"] > 0 else None
    return {"note": f"images evaluated / evaluation seconds of each worker, over {over}",
            "workers": dict(sorted(per.items()))}


class DaskEngine:
    """A Dask client on a local cluster (``jobs``) or on an existing one (``address`` / ``scheduler_file``).

    Use as a context manager; the local cluster (if any) is closed on exit.  ``timeout`` (s) bounds
    connecting to a scheduler and waiting for its first worker.  ``kept`` completes the message of a lost
    scheduler (what the job keeps on disk)."""

    kept = "finished shards are kept"

    def __init__(self, jobs: int | None = None, address: str | None = None, scheduler_file: str | None = None,
                 timeout: float = 30.0):
        if sum(x is not None for x in (jobs, address, scheduler_file)) != 1:
            raise ValueError("give one of --jobs, --cluster, --scheduler-file")
        self.jobs, self.address, self.scheduler_file, self.timeout = jobs, address, scheduler_file, timeout
        self.client = self.cluster = None
        self.threads = None
        self._log_level = None
        self._address = None
        self._lost_scheduler = False

    # -------------------------------------------------------------- connection
    def __enter__(self):
        from distributed import Client, LocalCluster

        # worker deaths and reconnects are reported by the job itself: every Dask logger is quiet meanwhile
        # (Dask's configuration gives some of them, e.g. distributed.client, a level of their own)
        names = ["distributed"] + [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
        self._log_level = {n: logging.getLogger(n).level for n in names}
        for n in names:
            logging.getLogger(n).setLevel(logging.CRITICAL)
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
        if self._log_level is not None and not self._lost_scheduler:
            # after a lost scheduler the client's reconnect attempts may still log from the background:
            # Dask stays quiet in this process (the job ends with its own line)
            for n, level in self._log_level.items():
                logging.getLogger(n).setLevel(level)
        return False

    @property
    def scheduler_address(self) -> str | None:
        return None if self.client is None else self.client.scheduler.address

    def n_workers(self) -> int:
        return len(self.client.scheduler_info().get("workers", {}))

    def describe(self) -> str:
        if self.cluster is not None:
            return f"local Dask cluster: {self.jobs} worker processes on 127.0.0.1"
        return f"Dask cluster {self.scheduler_address}: {self.n_workers()} workers"

    # -------------------------------------------------------------- running
    def _lost(self, why: str) -> ClusterError:
        self._lost_scheduler = True
        return ClusterError(f"lost the Dask scheduler {self._address} ({why}); {self.kept}: start the cluster "
                            "again and rerun with --resume")

    def run(self, fn, shared, units, args, skip=None, name=str, poll: float = 0.2):
        """Send ``shared`` once to every worker, submit ``fn(shared, *args(unit))`` for every unit (in order:
        Dask starts them roughly first come, first served) and yield ``(unit, result)`` as they finish.

        ``skip(unit)`` (optional) is asked after every finished unit: pending units it accepts are
        cancelled and finished ones are not yielded.  ``name(unit)`` names a unit in messages.  A
        :class:`ContentMismatch` raised on a worker and a unit that killed every worker it ran on end
        the job with :class:`ClusterError`; any other exception of ``fn`` is raised as it is."""
        from concurrent.futures import CancelledError

        from distributed import wait
        from distributed.client import FuturesCancelledError

        try:
            from distributed import KilledWorker
        except ImportError:  # older layout
            from distributed.scheduler import KilledWorker

        skip = skip or (lambda u: False)
        client = self.client
        ship = client.scatter(shared, broadcast=True, hash=False)
        futs = {}
        for u in units:
            futs[client.submit(fn, ship, *args(u), pure=False)] = u
        pending = set(futs)
        try:
            while pending:
                if client.status != "running":
                    raise self._lost(f"client {client.status}")
                try:
                    done, _ = wait(list(pending), timeout=poll, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                except (FuturesCancelledError, CancelledError):
                    raise self._lost("its shards were cancelled") from None
                for f in done:
                    pending.discard(f)
                    u = futs[f]
                    if skip(u):
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
                            raise ClusterError(f"{name(u)} was running on every worker that died while "
                                               f"evaluating it ({exc}); finished shards are kept (--resume)") from None
                        if isinstance(exc, ContentMismatch):
                            raise ClusterError(str(exc)) from None
                        raise exc
                    # forget the key now: a worker dying later must not make Dask recompute a shard we hold
                    futs.pop(f)
                    f.release()
                    yield u, rec
                    for g in [g for g in pending if skip(futs[g])]:
                        g.cancel()
                        pending.discard(g)
                        futs.pop(g)
                        g.release()
                del done
        finally:
            remaining = list(pending)
            if remaining and client.status == "running":
                client.cancel(remaining)
            futs.clear()


__all__ = ["ClusterError", "ContentMismatch", "DaskEngine", "images_sha256", "plan", "split", "throughput",
           "weights_sha256", "worker_label"]
