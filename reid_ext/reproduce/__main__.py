"""Reproduce the published results of the five papers.

    python -m reid_ext.reproduce --dry-run                     # the table; every config builds
    python -m reid_ext.reproduce --run adasp/market1501/adasp/map 12   # rows by id or number
    python -m reid_ext.reproduce --run --paper NFormer --dataset Market1501 [--opts KEY VALUE ...]

(console script ``reid-reproduce``). ``--dry-run`` prints one Markdown row per published
result (paper, dataset, variant, metric, value, source, config) and builds each config's
model on CPU without data; it exits 1 if one fails. ``--run`` trains and evaluates the
selected rows' configs (each once, NFormer's stage 1 first) with ``reid_ext.train_net``
where their datasets are under $FASTREID_DATASETS, skips the others (saying which files
are missing), reuses finished runs (``OUTPUT_DIR/results.json``, ``--rerun`` to redo) and
resumes interrupted ones, then writes ``reproduce.md`` and ``reproduce.csv`` (published,
ours, difference) to ``--out``.
"""
import argparse
import logging
import platform
import sys

import reid_ext  # noqa: F401  (shims + registrations)

from .harness import (build_check, dry_run_table, load_config, lookup, markdown,
                      missing_datasets, result_lines, RESULT_HEADER, select, train,
                      write_results)
from .rows import ROWS, UNPUBLISHED


def _parse(argv):
    p = argparse.ArgumentParser(prog="reid-reproduce", description=__doc__.split("\n")[1])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--dry-run", action="store_true", help="print the table, build every config")
    mode.add_argument("--run", nargs="*", metavar="ROW", help="row ids or numbers (none = all "
                      "rows passing --paper/--dataset)")
    p.add_argument("--paper", help="only rows of this paper (AdaSP, SFT, NFormer)")
    p.add_argument("--dataset", help="only rows whose dataset contains this (e.g. Market1501)")
    p.add_argument("--out", default="logs/reproduce", help="folder of reproduce.md / .csv")
    p.add_argument("--rerun", action="store_true", help="retrain rows with a results.json")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                   help="KEY VALUE overrides for every training (e.g. MODEL.DEVICE cuda)")
    return p.parse_args(argv)


def dry_run(rows):
    configs = list(dict.fromkeys([c for r in rows for c in (*r.requires, r.config)]))
    unpublished = [c for paper in UNPUBLISHED.values() for c in paper]
    engine_log = logging.getLogger("reid_ext.engine")
    level = engine_log.level
    engine_log.setLevel(logging.ERROR)  # per-model build chatter
    try:
        builds = {c: build_check(c) for c in configs + unpublished}
    finally:
        engine_log.setLevel(level)
    print(dry_run_table(rows, builds))
    print("Papers without a published number (their configs are checked too):\n")
    print(markdown(["paper", "config", "builds on CPU"],
                   [(p, f"`{c}`", builds[c]) for p, cs in UNPUBLISHED.items() for c in cs]))
    extra = [c for r in rows for c in r.requires]
    if extra:
        print("Trained first (stage 1 of NFormer): " + ", ".join(f"`{c}` {builds[c]}" for c in
                                                                  dict.fromkeys(extra)))
    failed = [c for c, status in builds.items() if status.startswith("FAILED")]
    print(f"\n{len(rows)} published rows, {len(builds)} configs, {len(failed)} failed to build")
    return 1 if failed else 0


def run(rows, args):
    log = logging.getLogger("reid_ext.reproduce")
    outcomes, done = [], {}
    for row in rows:
        if row.config not in done:
            missing = sorted({m for c in (*row.requires, row.config)
                              for m in missing_datasets(load_config(c, args.opts))})
            if missing:
                done[row.config] = (None, "skipped: dataset " + ", ".join(missing) +
                                    " not found (set FASTREID_DATASETS)")
            else:
                try:
                    for c in row.requires:
                        train(c, args.opts, args.rerun)
                    done[row.config] = (train(row.config, args.opts, args.rerun), "ok")
                except Exception as e:  # one failed row does not stop the others
                    done[row.config] = (None, f"failed: {type(e).__name__}: {e}")
            log.info("%s: %s", row.config, done[row.config][1])
        results, status = done[row.config]
        ours = None if results is None else lookup(results, row)
        if results is not None and ours is None:
            status = f"no {row.metric} for {row.test_set}/{row.result_variant or 'plain'} in results"
        outcomes.append((row, ours, status))
    machine = f"{platform.node()}, {platform.processor() or platform.machine()}"
    md, csv_path = write_results(outcomes, args.out, machine)
    print(markdown(RESULT_HEADER, result_lines(outcomes)))
    print(f"written: {md}, {csv_path}")
    return 1 if any(s.startswith("failed") for _, _, s in outcomes) else 0


def main(argv=None, rows=ROWS):
    logging.basicConfig(level=logging.INFO, format="[reid-reproduce] %(message)s")
    args = _parse(argv)
    try:
        chosen = select(rows, args.run or (), args.paper, args.dataset)
    except KeyError as e:
        sys.exit(f"reid-reproduce: {e.args[0]}")
    if not chosen:
        sys.exit("reid-reproduce: no row matches the selection")
    return dry_run(chosen) if args.dry_run else run(chosen, args)


def cli():
    sys.exit(main())


if __name__ == "__main__":
    cli()
