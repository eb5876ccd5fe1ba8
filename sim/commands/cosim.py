"""``sbs cosim OUT``: a whole-network design (from ``sbs build``) under Verilator + cocotb on MNIST images,
every layer's codes and the class == the quantized model, cycles == the cycle model; in this process, on a
local Dask cluster (``--jobs J``) or on an existing one (``--cluster`` / ``--scheduler-file``)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from sbs_model.atomic import write_json
from sbs_model.outputs import output_file
from sim.cosim import JOBS_MAX, SHARD_SIZE, SHARDS_DIR, ClusterError, check_engine_args, cosim, summary_lines

NAME = "cosim"
HELP = "cosimulate a whole-network design (sbs build -o OUT) against the quantized model, image by image"


def add_arguments(p):
    p.add_argument("design", metavar="OUT", help="design directory written by 'sbs build' (without --layer)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="directory with the gzipped IDX test files (default: the embedded 2000 MNIST test images)")
    p.add_argument("-n", type=int, default=10, help="number of test images (default 10)")
    p.add_argument("--first", type=int, default=0, metavar="K", help="first test image (default 0)")
    p.add_argument("--seed", type=int, default=0, help="spike random seed, 0..2**32-1 (default 0, as sbs eval)")
    p.add_argument("--jobs", "-j", type=int, default=1, metavar="J",
                   help=f"J > 1: a local Dask cluster of J worker processes (loopback only), 1..{JOBS_MAX}; "
                        "default 1: this process, nothing started")
    p.add_argument("--cluster", default=None, metavar="tcp://HOST:8786",
                   help="use an existing Dask cluster by its scheduler address (started with 'dask scheduler' and "
                        "'dask worker'; see docs/sweeps.md)")
    p.add_argument("--scheduler-file", default=None, metavar="FILE",
                   help="use an existing Dask cluster by the file 'dask scheduler --scheduler-file FILE' wrote")
    p.add_argument("--shard-size", type=int, default=None, metavar="N",
                   help=f"images per simulator run (default: at most {SHARD_SIZE}, fewer so that every worker gets "
                        "one); results do not depend on it")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S",
                   help="seconds to wait for a --cluster/--scheduler-file scheduler and its first worker (default 30)")
    p.add_argument("--resume", action="store_true",
                   help=f"reuse the finished shards of earlier runs (same design, seed and test set; kept in "
                        f"OUT/{SHARDS_DIR}/) and simulate only the missing images")
    p.add_argument("--no-waves", action="store_true", help="on a divergence, do not simulate the image again with waves")
    p.add_argument("--no-progress", action="store_true", help="a line per finished shard instead of a progress bar")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the result as JSON (atomically)")


def check_args(args) -> None:
    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    if args.first < 0:
        raise ValueError(f"--first must be >= 0, got {args.first}")
    if not 0 <= args.seed < 2 ** 32:
        raise ValueError(f"--seed must be in 0..{2 ** 32 - 1}, got {args.seed}")
    check_engine_args(args.jobs, args.cluster, args.scheduler_file, args.shard_size, args.timeout)
    if args.json is not None:
        output_file(args.json, "--json")
    d = Path(args.design)
    if not (d / "manifest.json").is_file():
        raise ValueError(f"OUT {args.design!r}: not a design directory (no manifest.json; make one with "
                         f"'sbs build -o {args.design}')")
    if not os.access(d, os.W_OK | os.X_OK):
        raise ValueError(f"OUT {args.design!r}: not writable (finished shards are kept in OUT/{SHARDS_DIR}/)")


def run(args) -> int:
    check_args(args)
    try:
        rep = cosim(args.design, args.data, args.n, args.first, args.seed, args.jobs, waves=not args.no_waves,
                    progress=lambda m: print(m, flush=True), cluster=args.cluster,
                    scheduler_file=args.scheduler_file, shard_size=args.shard_size, resume=args.resume,
                    timeout=args.timeout, bar=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted: finished shards are kept in {Path(args.design) / SHARDS_DIR}; continue with the same "
              "command and --resume", flush=True)
        raise
    except ClusterError as e:
        print(f"sbs cosim: error: {e}", file=sys.stderr)
        return 1
    for line in summary_lines(rep):
        print(line)
    if args.json:
        write_json(args.json, rep)
        print(f"-> {args.json}")
    if not rep["equal"]:
        print("sbs cosim: the design differs from the model (see the first divergence above)", file=sys.stderr)
        return 1
    return 0
