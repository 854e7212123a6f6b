"""``python -m reid_ext.protocol viper [--variants ...] [--splits ...] [--jobs 2]``

Runs every selected variant on every selected split (default: each variant's own
splits), reusing finished runs (results files of the same config) and resuming
interrupted ones, then rewrites the protocol's tables from all results files.
"""
import argparse
import logging
import os
import sys

from . import PROTOCOLS
from .report import collect
from .runner import machine, plan, run_protocol

logger = logging.getLogger("reid_ext.protocol")


def parse_splits(text):
    out = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return out


def default_datasets():
    """$FASTREID_DATASETS, else ../shared/data when it has the data, else ./datasets."""
    if os.getenv("FASTREID_DATASETS"):
        return os.environ["FASTREID_DATASETS"]
    shared = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
    return os.path.abspath(shared) if os.path.isdir(shared) else os.path.abspath("datasets")


def cli(argv=None):
    p = argparse.ArgumentParser(prog="reid-protocol", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("--variants", nargs="+", help="variant names (default: all)")
    p.add_argument("--splits", type=parse_splits,
                   help="e.g. 0-9 or 0,3,5 (default: each variant's own splits)")
    p.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    p.add_argument("--threads", type=int, default=1, help="OpenMP threads per run (default 1)")
    p.add_argument("--datasets", default=None,
                   help="FASTREID_DATASETS for the runs (default: $FASTREID_DATASETS, else "
                        "../shared/data if present, else ./datasets)")
    p.add_argument("--rerun", action="store_true", help="run even where a results file exists")
    p.add_argument("--keep-going", action="store_true", help="go on after a failed run")
    p.add_argument("--report", action="store_true", help="only rewrite the tables")
    p.add_argument("--list", action="store_true", help="list what would run and stop")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s",
                        datefmt="%m/%d %H:%M:%S")
    mod = PROTOCOLS[args.protocol]
    proto = mod.PROTOCOL
    variants = [proto.variant(n) for n in args.variants] if args.variants else proto.variants
    if args.splits and max(args.splits) >= proto.num_splits:
        p.error(f"--splits: {args.protocol} has splits 0-{proto.num_splits - 1}")
    failures = []
    if not args.report:
        todo, reused = plan(proto, variants, args.splits, args.rerun)
        logger.info("%s: %d runs to do, %d finished runs reused", args.protocol, len(todo),
                    len(reused))
        if args.list:
            for job in todo:
                print(job.key)
            return 0
        datasets = args.datasets or default_datasets()
        failures = run_protocol(proto, todo, datasets, args.jobs, args.threads, args.keep_going)
    found, stale = collect(proto)
    page = mod.write_pages(found, stale, machine())
    logger.info("tables written: %s (+ its blocks in BENCHMARKS.md and the project READMEs)", page)
    for key, err in failures:
        logger.error("FAILED %s: %s", key, err)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(cli())
