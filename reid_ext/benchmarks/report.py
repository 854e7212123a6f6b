"""Run every benchmark of ``reid_ext.benchmarks`` and write the benchmark page.

    python -m reid_ext.benchmarks [--full] [--device cpu|cuda] [--only NAME ...]
                                  [--out BENCHMARKS.md] [--note TEXT ...] [--timeout S]

Each benchmark script runs in its own subprocess (``python -m reid_ext.benchmarks.<name>
... --json FILE``), with quick sizes by default and the issue sizes with ``--full``; its
output is echoed live. The page has a header with the machine and the versions, one
row per figure (what is compared, the goal, the ratio measured side by side in that run,
the absolute numbers behind it, met / not met, and the command that reproduces the
row), notes, links to ``docs/benchmarks/*.md`` and a log of the runs. A benchmark that
fails gets a row with its error; the others still run.

The same run also rewrites the generated block (``<!-- bench:NAME:start -->`` ...
``<!-- bench:NAME:end -->``) of each ``docs/benchmarks/<doc>.md`` (the rows and the
script's own tables) and of the project READMEs that hold one (the rows in short), so a
figure quoted there is the figure of the page. The pages live under the folder of
``--out`` (the repository by default). Blocks of the previous page that other tools
write (``<!-- viper:start -->``, ``python -m reid_ext.protocol``) are kept verbatim.
"""
import argparse
import collections
import datetime
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The SynthPerson/trainer settings of tests/test_training.py: a few seconds per run.
TINY_TRAIN_OPTS = ["DATASETS.SYNTH.NUM_TRAIN_IDS", "8", "DATASETS.SYNTH.NUM_TEST_IDS", "6",
                   "DATASETS.SYNTH.IMGS_PER_ID", "4", "DATASETS.SYNTH.NUM_CAMS", "3",
                   "DATASETS.SYNTH.SIZE", "[64, 32]", "INPUT.SIZE_TRAIN", "[64, 32]",
                   "INPUT.SIZE_TEST", "[64, 32]", "SOLVER.IMS_PER_BATCH", "16",
                   "DATALOADER.NUM_WORKERS", "0", "SOLVER.WARMUP_ITERS", "2"]


@dataclass
class Row:
    method: str
    compared: str
    goal: str
    ratio: str = "—"
    absolute: str = ""
    status: str = ""
    issue_size: bool = True  # measured at the size the goal is stated for


@dataclass
class Bench:
    name: str
    method: str          # short method name (table's first column)
    compared: str        # what is compared (used for an error row)
    goal: str            # the goal (used for an error row)
    doc: str             # docs/benchmarks/<doc>.md
    sizes: Dict[str, List[str]]  # mode ("quick", "full", "tiny") -> arguments
    rows: Callable       # (result dict, args list, device) -> list[Row]
    device: bool = True  # the script takes --device
    readmes: tuple = ()  # READMEs whose <!-- bench:NAME:start/end --> block gets the rows


@dataclass
class Outcome:
    bench: Bench
    command: str
    rows: List[Row] = field(default_factory=list)
    error: Optional[str] = None
    seconds: float = 0.0
    load: tuple = (None, None)
    output: List[str] = field(default_factory=list)  # the script's stdout (docs page block)


# ----------------------------------------------------------------------------- helpers
def _ms(s):
    return f"{s * 1e3:,.2f}" if s < 0.1 else f"{s * 1e3:,.0f}"


def _secs(s):
    return f"{s:,.2f} s" if s < 100 else f"{s:,.0f} s"


def _status(ok):
    return "met" if ok else "**not met**"


def _arg(args, flag, default=None):
    if flag in args:
        return args[args.index(flag) + 1]
    return default


# ----------------------------------------------------------------------------- rows
def adasp_rows(r, args, device):
    rows = []
    for x in r["rows"]:
        ratio, ratio_min = x["adasp_median_s"] / x["triplet_median_s"], x["adasp_min_s"] / x["triplet_min_s"]
        rows.append(Row(
            "AdaSP", f"AdaSP loss fwd+bwd vs fastreid triplet (hard mining), B = {x['batch']}, "
                     f"{r['dim']}-d, {r['device']}, {r['threads']} thread(s)",
            f"AdaSP ≤ {r['goal']:g}× triplet", f"**{ratio:.2f}×** (min {ratio_min:.2f}×)",
            f"{_ms(x['adasp_median_s'])} vs {_ms(x['triplet_median_s'])} ms (medians of "
            f"{r['repeats']}); min {_ms(x['adasp_min_s'])} vs {_ms(x['triplet_min_s'])} ms",
            _status(ratio <= r["goal"]), issue_size=r["dim"] == 2048 and x["batch"] in (64, 128, 256)))
    return rows


def _on(r, device):
    """The device of a result dict, with the card's name when it has one."""
    name = r.get("device_name")
    return f"{r.get('device', device)}" + (f" ({name})" if name else "")


def lbr_rows(r, args, device):
    by = collections.defaultdict(dict)
    for x in r["rows"]:
        by[(x["Q"], x["G"])][x["method"]] = x
    rows = []
    for (q, g), m in by.items():
        if "lbr" not in m or "plain" not in m:
            continue
        lbr, ref = m["lbr"], m[m["lbr"].get("plain_ref", "plain")]
        size = f"{q:,} × {g:,} × {r['dim']}, {_on(r, device)}, {r['threads']} thread(s)"
        issue = (q, g, r["dim"]) == (3368, 15913, 2048)
        plains = " / ".join(f"{name} {_secs(m[k]['seconds'])}" for k, name in
                            (("plain", "fastreid build_dist"), ("plain_torch", "torch mm + in-place 1 − s"))
                            if k in m)
        ratio = lbr["seconds"] / ref["seconds"]
        absolute = f"LBR {_secs(lbr['seconds'])} vs plain {_secs(ref['seconds'])} (the faster of {plains})"
        if "lbr_topn" in m:
            t = m["lbr_topn"]["seconds"]
            absolute += f"; lbr_topn (top-n only) {_secs(t)} = {t / ref['seconds']:.2f}× plain"
        absolute += (f"; peak {lbr['peak_mb']:,.0f} vs {ref['peak_mb']:,.0f} MiB; mAP "
                     f"{m['plain']['mAP']:.2f} → {lbr['mAP']:.2f}, clustered synthetic features")
        goal = r.get("goal_vs_plain", 1.5)
        rows.append(Row("SFT + LBR", f"LBR vs the plain cosine distance matrix (the (Q, G) product any "
                                     f"dense re-ranking pays), {size}", f"LBR ≤ {goal:g}× plain",
                        f"**{ratio:.2f}×** plain", absolute, _status(ratio <= goal), issue_size=issue))
        if "krecip" in m:
            kr = m["krecip"]
            ratio = kr["seconds"] / lbr["seconds"]
            goal = r.get("goal_vs_krecip", 10.0)
            absolute = (f"LBR {_secs(lbr['seconds'])} vs k-reciprocal {_secs(kr['seconds'])} "
                        f"({kr.get('device', 'cpu')}, faiss CPU search; k-reciprocal / plain = "
                        f"{kr['seconds'] / ref['seconds']:.1f}×); peak {lbr['peak_mb']:,.0f} vs "
                        f"{kr['peak_mb']:,.0f} MiB; mAP {m['plain']['mAP']:.2f} → {lbr['mAP']:.2f} (LBR) "
                        f"/ {kr['mAP']:.2f} (k-reciprocal)")
            rows.append(Row("SFT + LBR", f"LBR vs fastreid k-reciprocal re-ranking, {size}",
                            f"LBR ≥ {goal:g}× faster", f"**{ratio:.1f}× faster**", absolute,
                            _status(ratio >= goal), issue_size=issue))
    if not rows:
        raise ValueError("no scale ran both LBR and the plain distances")
    return rows


C2F_GOALS = {(96, 96, 256): 15.0, (48, 48, 512): 3.0}


def _kernels(x):
    return ", ".join(x.get("kernels") or []) or "no SDPA"


def c2f_rows(r, args, device):
    rows = []
    for b in r["blocks"]:
        res, key = b["results"], (b["h"], b["w"], b["c"])
        c2f, full = res.get("c2f", {}), res.get("full", {})
        goal = C2F_GOALS.get(key)
        goal_txt = f"≥ {goal:g}× faster, ≤ memory" if goal else "— (no goal at this size)"
        compared = (f"C2F vs full attention through the fused SDPA kernel, block fwd+bwd, "
                    f"{b['h']}×{b['w']}×{b['c']}, batch {r['batch']}, {_on(r, device)}")
        if "error" in c2f or "error" in full or not c2f or not full:
            err = c2f.get("error") or full.get("error") or "not run"
            rows.append(Row("C2F", compared, goal_txt, "—", f"failed: {err}", "**failed**"))
            continue
        t, mem = full["time_s"] / c2f["time_s"], c2f["peak_mb"] / max(full["peak_mb"], 1e-9)
        absolute = (f"c2f {_ms(c2f['time_s'])} ms / {c2f['peak_mb']:,.1f} MB ({_kernels(c2f)}) vs full "
                    f"{_ms(full['time_s'])} ms / {full['peak_mb']:,.1f} MB ({_kernels(full)})")
        for kind, label in (("full-materialized", "materialised-map attention"),
                            ("nonlocal", "fastreid non-local")):
            x = res.get(kind)
            if x and "error" not in x:
                absolute += f"; {label} {_ms(x['time_s'])} ms / {x['peak_mb']:,.1f} MB"
        absolute += f" (median of {r['repeats']}; MB = peak allocated in one fwd+bwd"
        if c2f.get("rss_mb") is not None and full.get("rss_mb") is not None:
            absolute += f"; RSS growth {c2f['rss_mb']:,.0f} vs {full['rss_mb']:,.0f} MB"
        absolute += ")"
        fused = bool(full.get("kernels")) and not any(k.startswith("attention_math") for k in full["kernels"])
        status = (_status(t >= goal and mem <= 1) if goal else "n/a") if fused else \
            "**failed** (the full side ran the math path)"
        rows.append(Row("C2F", compared, goal_txt, f"**{t:.1f}× faster**, memory {mem:.2f}× of full",
                        absolute, status, issue_size=goal is not None))
    return rows


def nformer_rows(r, args, device):
    got = {x["N"]: x for x in r["rows"]}
    dense = got.get(r["dense_n"]) if r["dense_n"] else None
    rows = []
    for n in r["sizes"]:
        goal = f"≤ {r['goal_ratio']:g}× the bare N×N products, ≤ {r['goal_peak_GB']:g} GB above input"
        if n not in got:
            raise ValueError(f"the worker for N={n} failed (see its output)")
        x = got[n]
        compared = (f"NFormer inference vs the bare N×N products, N = {n:,}, d = {x['dim']}, "
                    f"{x['depth']} layer{'s' if x['depth'] != 1 else ''}, {_on(x, device)}, "
                    f"{x['threads']} thread(s)")
        absolute = (f"NFormer {_secs(x['nformer_s'])} (top-k search {_secs(x['search_s'])}) vs products "
                    f"{_secs(x['products_s'])} (mean of before/after); {x['peak_above_input_GB']:.2f} GB "
                    f"above input (the official code's dense (1, 2, N, N) tensors ≈ "
                    f"{x['dense_GB_estimate']:,.1f} GB, estimate)")
        if dense and "max_abs_diff_vs_dense" in dense:
            absolute += (f"; vs reid_ext's dense reference (`dense_nformer_forward`: N × N masked "
                         f"attention; tested against a loop reference) at N = {dense['N']:,}: "
                         f"max |diff| {dense['max_abs_diff_vs_dense']:.1e}")
        ok = x["ratio"] <= r["goal_ratio"] and x["peak_above_input_GB"] <= r["goal_peak_GB"]
        rows.append(Row("NFormer", compared, goal, f"**{x['ratio']:.2f}×**", absolute, _status(ok),
                        issue_size=n >= 100000 and x["dim"] == 256 and x["depth"] == 4))
    return rows


def _refs(x):
    """The float candidates of a hashing part, fastest (the reference) first."""
    times = x.get("float_all_s") or {x.get("float_ref", "float"): x["float_s"]}
    order = sorted(times.items(), key=lambda item: item[1])
    return ", ".join(f"{name} {t / x['queries'] * 1e3:.2f}" for name, t in order)


def hashing_rows(r, args, device):
    f, goal = r["full"], r["goal"]
    speed, mem = f["float_s"] / f["afr_s"], f["float_bytes"] / f["afr_bytes"]
    q = f["queries"]
    status = f"speed {_status(speed >= goal)}, memory {_status(mem >= 32)}"
    if mem < 32 and f["float_bytes"] == 32 * f["hamming_bytes"] and r["attr_bits"] <= 32:
        status += (f" ({mem:.1f}×: {r['bits']} + {r['attr_bits']} bits need "
                   f"{f['afr_bytes']:.0f} bytes > {f['float_bytes'] // 32:.0f}; the identity code "
                   f"alone is 32×)")
    ref = f.get("float_ref", "matmul + numpy argsort")
    rows = [Row("SSR hashing", f"AFR ({r['attr_bits']} + {r['bits']} bits, w = {r['w']}) vs the fastest "
                               f"exact float32 cosine full ranking ({ref}), {q:,} × {f['gallery']:,}, "
                               f"{r['dim']}-d, {_on(r, device)}",
                f"≥ {goal:g}× faster, 32× less memory/item",
                f"**{speed:.1f}× faster**, {mem:.1f}× less memory",
                f"{f['afr_s'] / q * 1e3:.2f} vs {f['float_s'] / q * 1e3:.2f} ms/query (Hamming alone "
                f"{f['float_s'] / f['hamming_s']:.1f}×); float32 candidates, ms/query: {_refs(f)}; "
                f"{f['afr_bytes']} vs {f['float_bytes']:,} bytes/item",
                status, issue_size=(q, f["gallery"], r["dim"], r["bits"]) == (100, 200000, 2048, 2048))]
    t = r.get("topk")
    if t:
        sp = t["float_s"] / t["afr_s"]
        absolute = (f"{t['afr_s'] / q * 1e3:.2f} vs {t['float_s'] / q * 1e3:.2f} ms/query; float32 "
                    f"candidates, ms/query: {_refs(t)}")
        if "faiss_binary_s" in t:
            absolute += f"; faiss IndexBinaryFlat (no AFR): {t['float_s'] / t['faiss_binary_s']:.1f}×"
        if t["gallery"] != t["requested_gallery"]:
            absolute += (f"; **{t['gallery']:,} items measured instead of {t['requested_gallery']:,}** "
                         f"(memory available)")
        rows.append(Row("SSR hashing", f"AFR top-{t['k']} vs the fastest exact float32 cosine top-{t['k']} "
                                       f"({t.get('float_ref', 'topk_similarity')}), {q:,} × "
                                       f"{t['gallery']:,}, {_on(r, device)}",
                        f"≥ {goal:g}× faster", f"**{sp:.1f}× faster**", absolute, _status(sp >= goal),
                        issue_size=(q, t["gallery"], t["k"]) == (100, 1000000, 100)))
    return rows


def _spread(r):
    """Per-run s/iter range of each side: shows how noisy the machine was."""
    out = []
    for side in ("ours", "plain"):
        v = [x["s_per_iter"] for x in r.get("runs", []) if x["trainer"] == side]
        if len(v) > 1:
            out.append(f"{side} {min(v):.3f}–{max(v):.3f}")
    return f"; runs: {', '.join(out)} s/iter" if out else ""


def trainer_rows(r, args, device):
    runs = r["alternations"]
    length = f"{r['iters']} iterations" if r["iters"] else f"{r['epochs']} epoch(s)"
    n_opts = len(r["opts"]) // 2
    what = (f"{r['config']}{f' + {n_opts} override(s)' if n_opts else ''}, batch {r['batch']}, {r['device']}"
            + (", AMP" if r["amp"] else "") + f", {r['threads']} thread(s)")
    absolute = (f"ours {r['ours_s_per_iter']:.3f} vs plain {r['plain_s_per_iter']:.3f} s/iter (medians of "
                f"{runs} alternating fresh runs each, {length} per run, first {r['warmup']} dropped)"
                + _spread(r) +
                f"; optimizer.step: ours {r['ours_opt_step_s'] * 1e3:.1f} ms, plain "
                f"{r['plain_opt_step_s'] * 1e3:.1f} ms per iteration")
    if not r["plain_weights_updated"]:
        absolute += " (fastreid's trainer updated no weight: torch 2 + ContiguousParams)"
    full_size = not r["iters"] and r["epochs"] >= 2 and runs >= 3
    rows = [Row("Trainer", f"reid_ext Trainer vs fastreid DefaultTrainer, s/iteration, {what}",
                f"overhead ≤ {r['goal'] * 100:g}% (like for like)",
                f"**{r['overhead_excl_opt_step'] * 100:+.1f}%** like for like (without optimizer.step); "
                f"raw {r['overhead'] * 100:+.1f}%", absolute,
                _status(r["met"]), issue_size=full_size)]
    if str(r["device"]).startswith("cuda"):
        tp = r["ours_images_per_s"] / r["plain_images_per_s"]
        rows.append(Row("Trainer", f"training throughput on {r['device_name']}, {what}",
                        f"≥ {100 - r['goal'] * 100:g}% of plain fastreid", f"**{tp * 100:.1f}%**",
                        f"ours {r['ours_images_per_s']:,.0f} vs plain "
                        f"{r['plain_images_per_s']:,.0f} images/s",
                        _status(tp >= 1 - r["goal"]), issue_size=full_size))
    return rows


BENCHMARKS = collections.OrderedDict((b.name, b) for b in [
    Bench("adasp", "AdaSP", "AdaSP loss fwd+bwd vs fastreid triplet", "AdaSP ≤ 2× triplet", "adasp",
          {"quick": ["--batches", "64", "128", "256", "--dim", "2048", "--repeats", "20", "--threads", "1"],
           "full": ["--batches", "64", "128", "256", "--dim", "2048", "--repeats", "200", "--threads", "1"],
           "tiny": ["--batches", "16", "--dim", "64", "--repeats", "2", "--threads", "1"]},
          adasp_rows),
    Bench("sft_lbr", "SFT + LBR", "LBR vs the plain cosine distances and vs fastreid k-reciprocal",
          "LBR ≤ 1.5× plain, ≥ 10× faster than k-reciprocal", "sft_lbr",
          {"quick": ["--scales", "0.05", "--krecip-max-scale", "0.05"],
           "full": ["--scales", "1.0", "--krecip-max-scale", "1.0"],
           "tiny": ["--num-query", "20", "--num-gallery", "100", "--num-ids", "10", "--dim", "64",
                    "--scales", "1.0", "--krecip-max-scale", "1.0", "--threads", "1"]},
          lbr_rows, readmes=("projects/SFT/README.md",)),
    Bench("c2f", "C2F", "C2F vs full attention through the fused SDPA kernel",
          "≥ 15× (96×96×256) / ≥ 3× (48×48×512) faster, ≤ memory", "c2f",
          {"quick": ["--batch", "1", "--repeats", "3", "--no-backbone", "--maps", "48x48x512",
                     "--kinds", "c2f", "full"],
           "full": ["--batch", "1", "--repeats", "3", "--no-backbone", "--skip-materialized-above", "2304"],
           "tiny": ["--batch", "1", "--repeats", "1", "--no-backbone", "--maps", "8x8x32", "--heads", "2",
                    "--kinds", "c2f", "full", "--threads", "1"]},
          c2f_rows, readmes=("projects/C2F/README.md",)),
    Bench("nformer", "NFormer", "NFormer inference vs bare N×N products",
          "≤ 1.5× the products, ≤ 4 GB above input", "nformer",
          {"quick": ["--threads", "1", "--sizes", "10000", "--dense-n", "0"],
           "full": ["--threads", "1", "--sizes", "100000"],
           "tiny": ["--threads", "1", "--sizes", "300", "--dim", "32", "--depth", "1", "--dense-n", "0"]},
          nformer_rows, readmes=("projects/NFormer/README.md",)),
    Bench("hashing", "SSR hashing", "AFR vs the fastest exact float32 cosine retrieval",
          "≥ 15× faster, 32× less memory/item", "hashing",
          {"quick": ["--num-query", "100", "--gallery", "20000", "--topk-gallery", "50000"],
           "full": ["--num-query", "100", "--gallery", "200000", "--topk-gallery", "1000000"],
           "tiny": ["--num-query", "4", "--gallery", "3000", "--topk-gallery", "4000", "--w", "200",
                    "--topk", "10", "--repeat", "1", "--dim", "64", "--bits", "256"]},
          hashing_rows, readmes=("projects/SSR/README.md",)),
    Bench("trainer_overhead", "Trainer", "reid_ext Trainer vs fastreid DefaultTrainer", "overhead ≤ 5%",
          "trainer_overhead",
          # MODEL.CHANNELS_LAST False: like for like (fastreid's trainer has no channels-last
          # input; with it, ours is faster, which is not the overhead this row measures)
          {"quick": ["--iters", "16", "--warmup", "6", "--alternations", "2",
                     "MODEL.CHANNELS_LAST", "False"],
           "full": ["--iters", "0", "--epochs", "2", "--warmup", "10", "--alternations", "3",
                    "MODEL.CHANNELS_LAST", "False"],
           "tiny": ["--iters", "3", "--warmup", "1", "--alternations", "1", "--threads", "1",
                    *TINY_TRAIN_OPTS, "MODEL.CHANNELS_LAST", "False"]},
          trainer_rows),
])


# ----------------------------------------------------------------------------- machine
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return None


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:  # noqa: BLE001
        return "not installed"


def _git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return (commit + (" + local changes" if dirty else "")) if commit else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info():
    import torch
    try:
        from importlib.metadata import version
        fastreid_version = version("fastreid")
    except Exception:  # noqa: BLE001
        fastreid_version = "?"
    gpu = "none"
    if torch.cuda.is_available():
        gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        gpu += f" (CUDA {torch.version.cuda})"
    ram = _ram_gib()
    return {"cpu": _cpu_model(), "arch": platform.machine(), "cores": os.cpu_count(),
            "ram": f"{ram:.0f} GiB" if ram else "?", "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "numpy": _version("numpy"), "faiss": _version("faiss"), "fastreid": fastreid_version,
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "commit": _git_commit(), "load": _load()}


def _load():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


# ----------------------------------------------------------------------------- running
def bench_args(bench, mode, device):
    args = list(bench.sizes[mode])
    if bench.device:
        args = ["--device", device] + args
    return args


def command_of(bench, args):
    return shlex.join(["python", "-m", f"reid_ext.benchmarks.{bench.name}", *args])


def run_one(bench, mode, device, workdir, timeout, echo=print):
    """Run one benchmark script in a subprocess; returns an :class:`Outcome`."""
    args = bench_args(bench, mode, device)
    out = Outcome(bench, command_of(bench, args))
    json_path = os.path.join(workdir, f"{bench.name}.json")
    cmd = [sys.executable, "-m", f"reid_ext.benchmarks.{bench.name}", "--json", json_path, *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    tail = collections.deque(maxlen=40)
    load0, t0 = _load(), time.perf_counter()
    timed_out = []
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env, start_new_session=True)
    except OSError as e:
        out.error = f"could not start: {e}"
        return out

    def kill():
        timed_out.append(True)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the script and the workers it started
        except OSError:
            pass

    timer = threading.Timer(timeout, kill) if timeout else None
    if timer:
        timer.start()
    try:
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            if len(out.output) < 500:
                out.output.append(line)
            echo(f"[{bench.name}] {line}")
        rc = proc.wait()
    except BaseException:  # e.g. Ctrl-C: the script runs in its own session, stop it too
        kill()
        proc.wait()
        raise
    finally:
        if timer:
            timer.cancel()
    out.seconds, out.load = time.perf_counter() - t0, (load0, _load())
    if timed_out:
        out.error = f"timed out after {timeout} s"
    elif rc != 0:
        out.error = f"exit {rc}: {_error_line(tail)}"
    elif not os.path.isfile(json_path):
        out.error = f"no results written: {_error_line(tail)}"
    if out.error:
        return out
    try:
        with open(json_path) as f:
            result = json.load(f)
        out.rows = bench.rows(result, args, device)
    except Exception as e:  # noqa: BLE001  (a malformed result: report it in the row)
        out.error = f"{type(e).__name__}: {e}"
        last = _error_line(tail)
        if last and last not in out.error:
            out.error += f" — last output: {last}"
    return out


def _error_line(tail):
    """The most informative line of a failed run's output (its exception, or the last)."""
    lines = [ln.strip() for ln in tail if ln.strip()]
    if not lines:
        return "no output"
    for ln in reversed(lines):
        if ("Error" in ln or "error:" in ln or "Exception" in ln) and not ln.startswith("File "):
            return ln[:300]
    return lines[-1][:300]


# ----------------------------------------------------------------------------- page
def _row_status(r):
    return r.status + ("" if r.issue_size or r.status in ("n/a", "**failed**") else " (reduced size)")


def _cell(s):
    return str(s).replace("|", "\\|").replace("\n", " ")


def render(machine, mode, device, outcomes, runner_cmd, notes=()):
    m = machine
    docs = [(b.method, b.doc) for b in BENCHMARKS.values()]
    L = ["# Benchmarks", "",
         "Every figure is a ratio measured side by side in one run (ours vs the reference on the "
         "same input), by a script of `reid_ext/benchmarks/`. The methods, the full tables and "
         "the caveats are in `docs/benchmarks/<method>.md`.", "",
         f"This page is written by `{runner_cmd}` (every benchmark; `--full` for the issue "
         f"sizes, `--only NAME...` for some of them); each row gives the command that "
         f"reproduces it.", ""]
    mode_txt = {"full": "**full** (the issue sizes)",
                "quick": "**quick** (reduced sizes and repeats: indicative ratios; the goals are "
                         "stated for the issue sizes, rows measured at another size say so)",
                "tiny": "**tiny** (test sizes: the figures mean nothing)"}[mode]
    L += [f"**Machine:** {m['cpu']} ({m['arch']}), {m['cores']} cores, {m['ram']} RAM, GPU: {m['gpu']}; "
          f"Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads by default), "
          f"numpy {m['numpy']}, faiss {m['faiss']}, fastreid {m['fastreid']}; {m['date']}"
          + (f"; reid_ext {m['commit']}" if m.get("commit") else "") + ".", "",
          f"**Sizes:** {mode_txt}. **Device:** `{device}` for the scripts that take `--device` "
          f"(fastreid's k-reciprocal and faiss always run on the CPU). **Load average** (1 min) "
          f"when the run started: {m['load']}"
          + (f", when it ended: {m.get('load_end')}" if m.get("load_end") is not None else "") + ".", ""]
    if not str(device).startswith("cuda"):
        L += ["**CUDA rows: not measured** (this run used no GPU). `python -m reid_ext.benchmarks "
              "--full --device cuda` runs the same scripts on a GPU (k-reciprocal and faiss stay "
              "on the CPU) and names the card in each row.", ""]
    L += ["| method | compared | goal | measured ratio | absolute numbers | status | command |",
          "|---|---|---|---|---|---|---|"]
    for o in outcomes:
        cmd = f"`{o.command}`"
        if o.error:
            b = o.bench
            L.append(f"| {_cell(b.method)} | {_cell(b.compared)} | {_cell(b.goal)} | — | "
                     f"failed: {_cell(o.error)} | **failed** | {cmd} |")
            continue
        for r in o.rows:
            L.append(f"| {_cell(r.method)} | {_cell(r.compared)} | {_cell(r.goal)} | {_cell(r.ratio)} | "
                     f"{_cell(r.absolute)} | {_cell(_row_status(r))} | {cmd} |")
    L += ["", "Notes", ""]
    base_notes = [
        "Ratios come from both sides measured in the same run, interleaved or in alternating fresh "
        "processes; on a shared machine the absolute times are inflated and noisy, the ratios less "
        "so (see the load average above and the run log below).",
        "Each reference is the best the stack offers, measured in the same run: full attention "
        "through the fused `scaled_dot_product_attention` kernel (the kernel each side ran is in "
        "the row; the C2F script fails if the fused side falls back to the math path), the "
        "fastest exact float32 ranking among torch and faiss for AFR / Hamming (named in the "
        "row), and for LBR both fastreid's k-reciprocal and the plain cosine distance matrix "
        "(the faster of fastreid's `build_dist` and a bare torch product): any re-ranking that "
        "returns a dense (Q, G) matrix pays that product.",
        "C2F memory: the most tensor memory allocated during one fwd+bwd (CPU: the allocator "
        "events of the torch profiler; CUDA: `max_memory_allocated`); the process RSS growth "
        "(allocator caches included, about ±10 MB of noise at these sizes) is given beside it. Earlier "
        "versions of this page compared C2F with a full attention that ran SDPA's math path "
        "(73.9× / 36.9× at 96×96×256): that baseline is gone.",
        "Trainer: fastreid's own `DefaultTrainer` on torch 2 updates no weight (its `zero_grad()` sets "
        "the gradients to None and its `ContiguousParams` optimizer sees none); it still loads the same "
        "data and runs the same forward, loss and backward. The goal is judged like for like (each "
        "side's `optimizer.step` time taken out); the raw ratio includes the Adam update that only "
        "ours does. Ours runs with `MODEL.CHANNELS_LAST False` here: the default channels-last "
        "backbone input (which fastreid's trainer lacks) made ours about 8% faster than plain in "
        "the 2026-12-02 run, a speed-up rather than an overhead.",
    ]
    loads = [x for o in outcomes for x in o.load if x is not None] + [m["load"] or 0]
    if loads and m["cores"] and max(loads) > m["cores"]:
        base_notes.insert(0, f"**The machine was busy:** the load average reached {max(loads):g} on "
                             f"{m['cores']} cores during the run (other jobs), so absolute times are "
                             f"inflated and the ratios noisy.")
    L += [f"- {n}" for n in [*base_notes, *notes]]
    L += ["", "Details: " + ", ".join(f"[{name}](docs/benchmarks/{doc}.md)" for name, doc in docs) + ".", ""]
    L += ["## Run log", "", "| benchmark | wall time | load average start → end | result |",
          "|---|---|---|---|"]
    for o in outcomes:
        res = f"failed: {o.error}" if o.error else f"{len(o.rows)} row(s)"
        l0, l1 = o.load
        L.append(f"| {o.bench.name} | {o.seconds:,.0f} s | {l0} → {l1} | {_cell(res)} |")
    return "\n".join(L) + "\n"


_BLOCK = re.compile(r"<!-- ([\w:.-]+):start -->.*?<!-- \1:end -->", re.S)


def kept_blocks(old_page):
    """The ``<!-- tag:start --> ... <!-- tag:end -->`` blocks of the previous page, verbatim:
    other writers own them (e.g. the VIPeR tables of ``python -m reid_ext.protocol``)."""
    return [m.group(0) for m in _BLOCK.finditer(old_page or "")]


def _run_line(machine, mode, device, runner_cmd):
    m = machine
    where = f"{m['cpu']}, {m['cores']} cores"
    if str(device).startswith("cuda"):
        where += f", GPU {m['gpu']}"
    return (f"Written by `{runner_cmd}` ({mode} sizes, device `{device}`) on {m['date']}"
            + (f", reid_ext {m['commit']}" if m.get("commit") else "") + f"; {where}; load average "
            f"{m['load']} → {m.get('load_end')}. Do not edit: the next run rewrites this block.")


def _output_md(lines):
    """A script's stdout as markdown: its tables as tables, everything else in text blocks."""
    out, group, is_table = [], [], None
    for line in [*lines, None]:
        table = line is not None and line.startswith("|")
        if line is None or (group and table != is_table):
            if is_table:
                out += ["", *group, ""]
            elif any(g.strip() for g in group):
                out += ["", "```text", *[g for g in group if g.strip()], "```", ""]
            group = []
        if line is not None:
            group.append(line)
            is_table = table
    return [ln for i, ln in enumerate(out) if ln or (i and out[i - 1])]  # no double blank lines


def doc_block(o, machine, mode, device, runner_cmd):
    """The generated block of ``docs/benchmarks/<doc>.md``: the page's rows and the script's output."""
    L = ["## Current figures (generated)", "", _run_line(machine, mode, device, runner_cmd), "",
         f"Command: `{o.command}`", ""]
    if o.error:
        L.append(f"**Failed:** {o.error}")
    else:
        L += ["| compared | goal | measured | absolute numbers | status |", "|---|---|---|---|---|"]
        L += [f"| {_cell(r.compared)} | {_cell(r.goal)} | {_cell(r.ratio)} | {_cell(r.absolute)} | "
              f"{_cell(_row_status(r))} |" for r in o.rows]
        L += ["", "The script's output:"] + _output_md(o.output)
    return "\n".join(L)


def readme_block(o, machine, mode, device, runner_cmd, readme):
    """The generated block of a project README: the rows in short, with a link to the details."""
    doc = os.path.relpath(os.path.join("docs", "benchmarks", f"{o.bench.doc}.md"),
                          os.path.dirname(readme))
    L = [f"Benchmark, from `{runner_cmd}` on {machine['date']} (device `{device}`; every number, "
         f"the machine and the command: [{doc}]({doc})):", ""]
    if o.error:
        L.append(f"failed: {o.error}")
    else:
        L += ["| compared | goal | measured | status |", "|---|---|---|---|"]
        L += [f"| {_cell(r.compared)} | {_cell(r.goal)} | {_cell(r.ratio)} | {_cell(_row_status(r))} |"
              for r in o.rows]
    return "\n".join(L)


def write_blocks(root, outcomes, machine, mode, device, runner_cmd, echo=print):
    """Rewrite the ``<!-- bench:NAME:start/end -->`` block of every ``docs/benchmarks/<doc>.md``
    (created if missing) and of the READMEs that hold one, from this run's outcomes: each
    figure a README or docs page quotes is then the one on the benchmark page."""
    from reid_ext.protocol.report import replace_block
    for o in outcomes:
        tag = f"bench:{o.bench.name}"
        doc = os.path.join(root, "docs", "benchmarks", f"{o.bench.doc}.md")
        if not os.path.isfile(doc):
            os.makedirs(os.path.dirname(doc), exist_ok=True)
            with open(doc, "w") as f:
                f.write(f"# {o.bench.method} benchmark\n")
        replace_block(doc, tag, doc_block(o, machine, mode, device, runner_cmd))
        written = [doc]
        for rel in o.bench.readmes:
            path = os.path.join(root, rel)
            if os.path.isfile(path) and f"<!-- {tag}:start -->" in open(path).read():
                replace_block(path, tag, readme_block(o, machine, mode, device, runner_cmd, rel))
                written.append(path)
        echo(f"== {o.bench.name}: blocks written in " + ", ".join(os.path.relpath(p, root) for p in written))


# ----------------------------------------------------------------------------- main
def main(argv=None, echo=print):
    p = argparse.ArgumentParser(prog="python -m reid_ext.benchmarks",
                                description="Run the reid_ext benchmarks and write the benchmark page.")
    p.add_argument("--full", action="store_true", help="the issue sizes (default: quick sizes)")
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # test sizes
    p.add_argument("--device", default="cpu", help="cpu | cuda (scripts that take --device)")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=list(BENCHMARKS),
                   help=f"run only these ({', '.join(BENCHMARKS)}); the page then has only their rows")
    p.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"), help="the page to write")
    p.add_argument("--note", action="append", default=[], help="a note for the page (repeatable)")
    p.add_argument("--timeout", type=int, default=0,
                   help="seconds per benchmark (default: 1800 quick, 10800 full)")
    args = p.parse_args(argv)
    if args.full and args.tiny:
        p.error("--full and --tiny exclude each other")
    mode = "full" if args.full else "tiny" if args.tiny else "quick"
    timeout = args.timeout or {"full": 10800, "quick": 1800, "tiny": 600}[mode]
    names = [n for n in BENCHMARKS if not args.only or n in args.only]  # page order
    runner_cmd = "python -m reid_ext.benchmarks" + (" --full" if mode == "full" else "") + (
        f" --device {args.device}" if args.device != "cpu" else "")
    machine = machine_info()
    echo(f"benchmarks ({mode} sizes, device {args.device}): {', '.join(names)}")
    outcomes = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reid_ext_bench_") as work:
        for name in names:
            bench = BENCHMARKS[name]
            o = run_one(bench, mode, args.device, work, timeout, echo=echo)
            outcomes.append(o)
            echo(f"== {name}: " + (f"FAILED ({o.error})" if o.error else
                                   f"{len(o.rows)} row(s)") + f" in {o.seconds:.0f} s")
    machine["load_end"] = _load()
    page = render(machine, mode, args.device, outcomes, runner_cmd, args.note)
    root = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(root, exist_ok=True)
    old = open(args.out).read() if os.path.isfile(args.out) else ""
    page += "".join(f"\n{block}\n" for block in kept_blocks(old))  # e.g. the VIPeR tables
    with open(args.out, "w") as f:
        f.write(page)
    write_blocks(root, outcomes, machine, mode, args.device, runner_cmd, echo=echo)
    echo(f"wrote {args.out} ({sum(len(o.rows) for o in outcomes)} rows, "
         f"{sum(bool(o.error) for o in outcomes)} failed) in {time.perf_counter() - t0:.0f} s")
    return outcomes
