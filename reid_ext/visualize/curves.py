"""Training-curve pictures from a training's OUTPUT_DIR (tensorboard events or metrics.json).

    reid-visualize curves --logdir logs/quickstart [--out curves.png] [--tags PATTERN ...]

Reads the scalars that fastreid's ``TensorboardXWriter`` writes (``events.out.tfevents.*``
in OUTPUT_DIR; when there is none, fastreid's ``metrics.json`` there) and plots them
against the iteration, one panel per quantity: the losses (``total_loss`` and every
``loss_*``) together, the learning rate, the training accuracy, then one panel per
evaluation metric (Rank-1, Rank-5, Rank-10, mAP, mINP) with one line for the plain result
and one per variant (``LBR/Rank-1``, ``NFormer/mAP``...). Timing scalars are left out
unless asked for with ``--tags`` (exact tags or shell patterns, e.g. ``--tags 'loss_*' lr
time``). Default output: ``<logdir>/curves.png``.

Functional core: :func:`read_scalars` (folder -> {tag: (steps, values)}),
:func:`group_tags` (tags -> panels), :func:`plot_curves` (-> PNG).
"""
import argparse
import fnmatch
import glob
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np

from . import VisualizeError

METRIC_KINDS = ("Rank-1", "Rank-5", "Rank-10", "mAP", "mINP", "metric")
HIDDEN = ("time", "data_time", "eta_seconds")  # shown only when named by --tags
EVENT_GLOB = "events.out.tfevents.*"


def _dedupe(steps, values):
    """Sorted by step; for a step written twice (resumed run) the last value wins."""
    last = {}
    for s, v in zip(steps, values):
        last[int(s)] = float(v)
    keys = sorted(last)
    return np.asarray(keys, dtype=np.int64), np.asarray([last[k] for k in keys], dtype=np.float64)


def read_event_scalars(logdir):
    """{tag: (steps (n,), values (n,))} from every event file directly in ``logdir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = {}
    for path in sorted(glob.glob(os.path.join(logdir, EVENT_GLOB))):
        acc = EventAccumulator(path, size_guidance={"scalars": 0})  # 0 = keep every point
        acc.Reload()
        for tag in acc.Tags().get("scalars", []):
            s, v = data.setdefault(tag, ([], []))
            for e in acc.Scalars(tag):
                s.append(e.step)
                v.append(e.value)
    return {tag: _dedupe(s, v) for tag, (s, v) in data.items()}


def read_metrics_json(path):
    """{tag: (steps, values)} from fastreid's metrics.json (one JSON dict per line with
    ``iteration``)."""
    data = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise VisualizeError(f"{path}, line {n}: not JSON ({e})") from None
            it = rec.pop("iteration", None)
            if it is None:
                continue
            for tag, v in rec.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    s, vals = data.setdefault(tag, ([], []))
                    s.append(it)
                    vals.append(v)
    return {tag: _dedupe(s, v) for tag, (s, v) in data.items()}


def read_scalars(logdir):
    """The scalars of a training folder: its tensorboard events, else its metrics.json.

    Returns ({tag: (steps int64 (n,), values float64 (n,))}, source path)."""
    if not os.path.isdir(logdir):
        raise VisualizeError(f"--logdir {logdir}: no such directory")
    data = read_event_scalars(logdir)
    if data:
        return data, os.path.join(logdir, EVENT_GLOB)
    metrics = os.path.join(logdir, "metrics.json")
    if os.path.isfile(metrics):
        data = read_metrics_json(metrics)
        if data:
            return data, metrics
    found = glob.glob(os.path.join(logdir, EVENT_GLOB))
    what = (f"its {len(found)} event file(s) hold no scalars" if found
            else f"no tensorboard event file ({EVENT_GLOB})")
    raise VisualizeError(f"--logdir {logdir}: {what} and no usable metrics.json; point it at "
                         f"a training's OUTPUT_DIR (e.g. logs/quickstart)")


def _is_loss(tag):
    leaf = tag.split("/")[-1]
    return leaf == "total_loss" or leaf.startswith("loss_")


def group_tags(tags):
    """Panels for these tags: OrderedDict {panel title: [(tag, legend label), ...]}.

    Order: "loss" (total_loss, loss_*), "lr", other training scalars (one panel each),
    one panel per evaluation metric kind (series "plain" for ``Rank-1``, "LBR" for
    ``LBR/Rank-1``, "Market1501" for ``Market1501/Rank-1``...), then any other tag."""
    tags = list(tags)
    groups = OrderedDict()
    losses = sorted((t for t in tags if _is_loss(t)), key=lambda t: (t != "total_loss", t))
    if losses:
        groups["loss"] = [(t, t) for t in losses]
    if "lr" in tags:
        groups["lr"] = [("lr", "lr")]
    metric = {k: [] for k in METRIC_KINDS}
    rest = []
    for t in tags:
        if _is_loss(t) or t == "lr":
            continue
        leaf = t.split("/")[-1]
        if leaf in metric:
            metric[leaf].append((t, t[:-len(leaf) - 1] if "/" in t else "plain"))
        elif "/" not in t:
            groups[t] = [(t, t)]  # training scalars: cls_accuracy, time...
        else:
            rest.append(t)
    for kind, series in metric.items():
        if series:
            groups[kind] = sorted(series, key=lambda s: (s[1] != "plain", s[1]))
    for t in rest:
        groups[t] = [(t, t)]
    return groups


def select_tags(tags, patterns=None):
    """Tags to plot: those matching any pattern (fnmatch), default every tag but timings,
    ``metric`` and variant timing/size figures (``hash256/ms/query``...)."""
    tags = sorted(tags)
    if patterns:
        chosen = [t for t in tags if any(fnmatch.fnmatchcase(t, p) for p in patterns)]
        if not chosen:
            raise VisualizeError(f"--tags {' '.join(patterns)}: no such scalar; available: "
                                 f"{', '.join(tags)}")
        return chosen
    return [t for t in tags if t not in HIDDEN and
            (_is_loss(t) or "/" not in t or t.split("/")[-1] in METRIC_KINDS)
            and t.split("/")[-1] != "metric"]


def grid_shape(num_panels, max_cols=3):
    """(rows, cols) of the subplot grid."""
    cols = min(max_cols, max(1, num_panels))
    return int(math.ceil(num_panels / cols)), cols


MARKERS = ("o", "s", "^", "v", "D", "x", "+")
PANEL_SIZE = (5.0, 3.4)  # inches per subplot
DPI = 100


def plot_curves(scalars, out_path, patterns=None, title=None):
    """Plot ``scalars`` ({tag: (steps, values)}) into ``out_path`` (PNG).

    Figure size: cols * 5 x rows * 3.4 inches at 100 dpi (see :func:`grid_shape`).
    Returns the panels drawn (:func:`group_tags` of the selected tags)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    groups = group_tags(select_tags(scalars, patterns))
    if not groups:
        raise VisualizeError(f"nothing to plot among {', '.join(sorted(scalars))}")
    nrows, ncols = grid_shape(len(groups))
    fig, axes = plt.subplots(nrows, ncols, figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows),
                             squeeze=False, dpi=DPI)
    for ax, (panel, series) in zip(axes.flat, groups.items()):
        for i, (tag, label) in enumerate(series):
            steps, values = scalars[tag]
            few = len(steps) <= 30  # markers (the first series larger, so equal values show)
            ax.plot(steps, values, label=label, marker=MARKERS[i % len(MARKERS)] if few else None,
                    markersize=(6 if i == 0 else 4) if few else None)
        all_steps = np.unique(np.concatenate([scalars[t][0] for t, _ in series]))
        if len(all_steps) <= 8:
            ax.set_xticks(all_steps)
            if len(all_steps) == 1:
                ax.set_xlim(all_steps[0] - 1, all_steps[0] + 1)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if panel == "lr":
            vals = np.concatenate([scalars[t][1] for t, _ in series])
            pos = vals[vals > 0]
            if len(pos) and pos.max() / pos.min() > 20:
                ax.set_yscale("log")
        ax.set_title(panel)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=DPI)
    plt.close(fig)
    return groups


def main(argv=None):
    """``reid-visualize curves``; returns (PNG path, panels)."""
    ap = argparse.ArgumentParser(prog="reid-visualize curves",
                                 description="Loss, lr and evaluation curves of a training run")
    ap.add_argument("--logdir", required=True, help="the training's OUTPUT_DIR")
    ap.add_argument("--out", help="output PNG (default <logdir>/curves.png)")
    ap.add_argument("--tags", nargs="+", metavar="PATTERN",
                    help="scalars to plot (exact tags or shell patterns); default: losses, lr, "
                         "accuracy, evaluation metrics")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    scalars, source = read_scalars(args.logdir)
    out = args.out or os.path.join(args.logdir, "curves.png")
    groups = plot_curves(scalars, out, args.tags,
                         title=f"{os.path.abspath(args.logdir)}")
    last = max(int(s[-1]) for s, _ in scalars.values())
    print(f"reid-visualize curves: wrote {out} ({len(groups)} panels: {', '.join(groups)}; "
          f"up to iteration {last}; from {source})")
    if not any(k in groups for k in METRIC_KINDS):
        print("reid-visualize curves: no evaluation metric among the logged scalars (no "
              "evaluation ran, or the run was made by plain fastreid, whose writers skip "
              "evaluations; the results table is in log.txt)", file=sys.stderr)
    return out, groups


if __name__ == "__main__":  # same as reid-visualize curves (errors as messages)
    from .cli import main as cli_main
    cli_main(["curves", *sys.argv[1:]])
