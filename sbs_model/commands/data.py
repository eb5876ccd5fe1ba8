"""``sbs data``: place a dataset (gzipped IDX files) where the project finds it, verified by SHA-256."""
from __future__ import annotations

from sbs_model.data import DATASETS, place_dataset
from sbs_model.outputs import input_dir, output_dir

NAME = "data"
HELP = "copy or download MNIST / Fashion-MNIST (SHA-256 verified) into the user data directory"


def add_arguments(p):
    p.add_argument("--name", default="mnist", choices=DATASETS, help="dataset (default: mnist)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--from", dest="source", metavar="DIR",
                     help="copy from a local directory holding the *-ubyte.gz files (checked against its "
                          "SHA256SUMS when present, and always against the known SHA-256)")
    src.add_argument("--url", metavar="URL",
                     help="download from this base URL (default: the dataset's usual mirror)")
    p.add_argument("--to", metavar="DIR",
                   help="destination directory (default: $SBS_DATA/<name> or ~/.cache/sbs-codesign/<name>, "
                        "where load_dataset finds it)")
    p.add_argument("--split", default="all", choices=("test", "train", "all"),
                   help="which files to place (default: all)")
    p.add_argument("--timeout", type=float, default=60.0, help="download timeout per request in seconds")


def run(args) -> int:
    if args.to is not None:  # before fetching anything
        output_dir(args.to, "--to")
    if args.source is not None:
        input_dir(args.source, "--from")
    paths = place_dataset(args.name, source=args.source, url=args.url, to=args.to, split=args.split,
                          timeout=args.timeout)
    for p in paths:
        print(f"placed {p} (SHA-256 verified)")
    print(f"{args.name}: {len(paths)} file(s) in {paths[0].parent}")
    return 0
