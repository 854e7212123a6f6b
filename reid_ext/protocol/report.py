"""Tables of a protocol from its committed results files: mean +- std over the splits,
the paired difference to the baseline, CPU time per run.

Only results files whose ``config_hash`` is the one the variant's config gives now are
counted (a results file of an older config is listed as stale), so every number of the
table can be traced to a file and regenerated from the files alone.
"""
import os

import numpy as np

from .runner import config_hash, load_result, results_file

METRICS = ("Rank-1", "Rank-5", "Rank-10", "Rank-20", "mAP")


def collect(protocol, variants=None):
    """{variant name: {split: record}} of the current results files; and the stale ones."""
    found, stale = {}, []
    for v in variants or protocol.variants:
        runs = {}
        for s in range(protocol.num_splits):
            path = results_file(protocol, v, s)
            if not os.path.exists(path):
                continue
            rec = load_result(path)
            if rec.get("config_hash") == config_hash(protocol, v, s):
                runs[s] = rec
            else:
                stale.append(path)
        found[v.name] = runs
    return found, stale


def metric_of(record, metric, result_variant=""):
    src = record["variants"].get(result_variant, {}) if result_variant else record["metrics"]
    return src.get(metric)


def select_on_validation(found, test, val, prefix, metric="mAP"):
    """Per split, the entry of a parameter grid (``"<prefix> k=v ..."`` result variants)
    that scores best on the validation run, read on the test run.

    test, val: variant names whose runs report the same grid (``val`` trained and
    evaluated on ``DATASETS.VIPER.VALIDATION`` halves of the split's training
    identities). Returns {split: record}: the test record with ``metrics`` = the chosen
    entry and ``chosen`` = its name; only splits where both runs exist. Ties go to the
    first entry of the grid.
    """
    out = {}
    for s, rec in found.get(test, {}).items():
        v = found.get(val, {}).get(s)
        if v is None:
            continue
        grid = [k for k in v["variants"] if k.startswith(prefix + " ") and k in rec["variants"]]
        if not grid:
            continue
        best = max(grid, key=lambda k: (v["variants"][k][metric], -grid.index(k)))
        out[s] = {**rec, "metrics": rec["variants"][best], "chosen": best,
                  "chosen_val": v["variants"][best][metric]}
    return out


def mean_std(values):
    a = np.asarray(values, dtype=np.float64)
    if not len(a):
        return "–"
    return f"{a.mean():.1f} ± {a.std(ddof=1):.1f}" if len(a) > 1 else f"{a.mean():.1f}"


def splits_text(splits):
    s = sorted(splits)
    if s and s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{len(s)} ({s[0]}–{s[-1]})"
    return f"{len(s)} ({', '.join(map(str, s))})" if s else "0"


def summary_rows(protocol, found, rows):
    """rows: [(label, variant name, result variant)] -> Markdown lines of mean +- std."""
    lines = []
    for label, name, rv in rows:
        runs = found.get(name, {})
        vals = {m: [metric_of(r, m, rv) for r in runs.values()] for m in METRICS}
        # a resumed run's CPU seconds cover only its last part: not counted
        cpu = [r["cpu_seconds"] for r in runs.values() if not r.get("resumed")]
        cells = [mean_std([x for x in vals[m] if x is not None]) for m in METRICS]
        cpu_txt = f"{np.mean(cpu) / 60:.1f}" if cpu else "–"
        lines.append([label, splits_text(runs), *cells, cpu_txt])
    return lines


def paired_rows(protocol, found, rows, metrics=("Rank-1", "Rank-20", "mAP")):
    """rows: [(label, (name, result variant), (baseline name, baseline result variant))]
    -> lines: paired difference mean +- std and how many splits are better, per metric."""
    lines = []
    for label, (name, rv), (base, brv) in rows:
        a, b = found.get(name, {}), found.get(base, {})
        common = sorted(set(a) & set(b))
        cells = []
        for m in metrics:
            d = [metric_of(a[s], m, rv) - metric_of(b[s], m, brv) for s in common
                 if metric_of(a[s], m, rv) is not None and metric_of(b[s], m, brv) is not None]
            if not d:
                cells.append("–")
                continue
            d = np.asarray(d)
            sd = f" ± {d.std(ddof=1):.1f}" if len(d) > 1 else ""
            cells.append(f"{d.mean():+.1f}{sd} ({int((d > 0).sum())}/{len(d)} better)")
        lines.append([label, str(len(common)), *cells])
    return lines


def per_split_rows(found, rows, metric="Rank-1"):
    """One line per row, one column per split: the raw numbers behind the means."""
    splits = sorted({s for runs in found.values() for s in runs})
    lines = []
    for label, name, rv in rows:
        runs = found.get(name, {})
        lines.append([label] + [f"{metric_of(runs[s], metric, rv):.1f}" if s in runs else ""
                                for s in splits])
    return splits, lines


def markdown(header, lines):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return "\n".join(out) + "\n"


def replace_block(path, tag, text):
    """Put ``text`` between ``<!-- tag:start -->`` and ``<!-- tag:end -->`` of ``path``
    (appended with the markers when absent)."""
    start, end = f"<!-- {tag}:start -->", f"<!-- {tag}:end -->"
    body = open(path).read() if os.path.exists(path) else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in body and end in body:
        head, rest = body.split(start, 1)
        body = head + block + rest.split(end, 1)[1]
    else:
        body = body.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(body)
