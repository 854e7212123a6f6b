"""Check, train and compare the configs of the published rows (see ``rows.py``)."""
import csv
import io
import json
import logging
import os
import subprocess
import sys

from reid_ext.config import get_cfg, merge_from_file
from reid_ext.data.datasets import DatasetNotFoundError, build_dataset, datasets_root

logger = logging.getLogger(__name__)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CPU_BUILD = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False",
             "MODEL.HEADS.NUM_CLASSES", "8"]


def resolve(path):
    return path if os.path.isabs(path) else os.path.join(ROOT, path)


def load_config(path, opts=()):
    cfg = get_cfg()
    merge_from_file(cfg, resolve(path))
    cfg.merge_from_list(list(opts))
    return cfg


def build_check(path):
    """Build the config's model on CPU without data or downloads; returns 'ok (N M params)'
    or 'FAILED: <error>'."""
    from reid_ext.engine import get_trainer_class
    try:
        cfg = load_config(path, CPU_BUILD)
        model = get_trainer_class(cfg).build_model(cfg)
    except Exception as e:  # reported per config; the dry run fails at the end
        return f"FAILED: {type(e).__name__}: {e}"
    params = sum(p.numel() for p in model.parameters())
    return f"ok ({params / 1e6:.1f} M params)"


def missing_datasets(cfg):
    """The DATASETS.NAMES/TESTS of ``cfg`` whose files are not under $FASTREID_DATASETS."""
    missing = []
    for name in dict.fromkeys(list(cfg.DATASETS.NAMES) + list(cfg.DATASETS.TESTS)):
        try:
            build_dataset(cfg, name)
        except DatasetNotFoundError:
            missing.append(name)
    return missing


def results_path(cfg):
    return os.path.join(resolve(cfg.OUTPUT_DIR), "results.json")


def train(path, opts=(), rerun=False):
    """Train + evaluate one config in a subprocess (``reid_ext.train_net``), resuming an
    interrupted run; returns its results dict. A finished run (``results.json``) is reused
    unless ``rerun``."""
    cfg = load_config(path, opts)
    out = results_path(cfg)
    if os.path.exists(out) and not rerun:
        logger.info("%s: reusing %s", path, out)
    else:
        resume = os.path.exists(os.path.join(os.path.dirname(out), "last_checkpoint"))
        cmd = [sys.executable, "-m", "reid_ext.train_net", "--config-file", resolve(path),
               *(["--resume"] if resume and not rerun else []), *opts]
        logger.info("running: %s", " ".join(cmd))
        subprocess.run(cmd, cwd=ROOT, check=True)
        if not os.path.exists(out):
            raise RuntimeError(f"{path}: training finished without writing {out}")
    with open(out) as f:
        return json.load(f)


def lookup(results, row):
    """Our value of ``row`` in a ``results.json`` dict, or None."""
    res = results.get(row.test_set, {})
    if row.result_variant:
        res = res.get(row.result_variant, {})
    value = res.get(row.metric)
    return None if value is None else float(value)


def select(rows, ids=(), paper=None, dataset=None):
    """Rows by id or 1-based index (all when ``ids`` is empty), then by paper/dataset."""
    chosen = list(rows)
    if ids:
        by_id = {r.id: r for r in rows}
        chosen = []
        for key in ids:
            if key.isdigit() and 1 <= int(key) <= len(rows):
                chosen.append(rows[int(key) - 1])
            elif key in by_id:
                chosen.append(by_id[key])
            else:
                raise KeyError(f"unknown row '{key}'; see the ids in "
                               "`python -m reid_ext.reproduce --dry-run`")
    if paper:
        chosen = [r for r in chosen if r.paper.lower() == paper.lower()]
    if dataset:
        chosen = [r for r in chosen if dataset.lower() in r.dataset.lower()]
    return chosen


def markdown(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def print_table(table, path=None):
    """Print a Markdown table and, with ``path``, also write it there (the tools' --out)."""
    print(table)
    if path:
        with open(path, "w") as f:
            f.write(table)


def dry_run_table(rows, builds):
    header = ["#", "id", "paper", "dataset", "variant", "metric", "published", "source",
              "config", "builds on CPU"]
    lines = [(i, f"`{r.id}`", r.paper, r.dataset, r.variant, r.metric, f"{r.published:g}",
              f"{r.source} ({r.confidence})", f"`{r.config}`", builds[r.config])
             for i, r in enumerate(rows, 1)]
    return markdown(header, lines)


RESULT_HEADER = ["id", "paper", "dataset", "variant", "metric", "published", "ours",
                 "difference", "config", "status"]


def result_lines(outcomes):
    """``outcomes``: [(row, ours or None, status)] -> rows of RESULT_HEADER."""
    lines = []
    for r, ours, status in outcomes:
        diff = "" if ours is None else f"{ours - r.published:+.2f}"
        lines.append([r.id, r.paper, r.dataset, r.variant, r.metric, f"{r.published:g}",
                      "" if ours is None else f"{ours:.2f}", diff, r.config, status])
    return lines


def write_results(outcomes, out_dir, machine=""):
    """Markdown and CSV of published vs ours; returns the two paths."""
    os.makedirs(out_dir, exist_ok=True)
    lines = result_lines(outcomes)
    md = os.path.join(out_dir, "reproduce.md")
    with open(md, "w") as f:
        f.write("# Published vs reid_ext\n\n")
        if machine:
            f.write(f"Machine: {machine}. Data root: `{os.path.abspath(datasets_root())}`.\n\n")
        f.write(markdown(RESULT_HEADER, lines))
    path = os.path.join(out_dir, "reproduce.csv")
    buf = io.StringIO()
    csv.writer(buf).writerows([RESULT_HEADER] + lines)
    with open(path, "w", newline="") as f:
        f.write(buf.getvalue())
    return md, path
