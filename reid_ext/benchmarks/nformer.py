"""NFormer inference at scale: gathered LAA/RNS vs the bare N x N similarity products.

    python -m reid_ext.benchmarks.nformer [--sizes 20000 50000 100000] [--dim 256]
        [--depth 4] [--device cpu] [--threads T] [--dense-n 4000] [--json PATH]

For every N (one subprocess each, so the peak memory is its own): an NFormer (d = --dim,
--depth layers, 2 heads, 5 landmarks, top-20) in eval mode over N random features, timed
end to end (the exact cosine top-k search included and also reported on its own), the
peak resident memory above the input (CPU: ru_maxrss minus the RSS after the input and
the model exist; CUDA: max_memory_allocated minus the allocated bytes before the call),
and the time of the bare N x N products X X^T in the same row chunks as the search
(nothing kept: the floor of any exact neighbour search), timed before and after the
NFormer (the mean is used: load drifts on shared machines). Ratio = NFormer / products;
goals: <= 1.5x and <= 4 GB above the input at N = 100k. The official dense code would
hold about 3 (1, 2, N, N) fp32 tensors, printed as "dense GB (estimate)".
At --dense-n the output is also compared, on the same landmarks, with reid_ext's dense
reference ``dense_nformer_forward``: the same layers with the attention computed as an
N x N masked matrix (``dense_landmark_agent_attention``). It is reid_ext's own second
path, not the official code (which is not run here); tests/test_nformer_core.py checks
it, and the whole model, against a loop-level restatement of the official attention.
``main`` returns one dict per N (also written to ``--json``).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
from reid_ext.benchmarks import save_json


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bare_products(x, chunk):
    """Time of X[c] @ X^T over all row chunks c (result discarded)."""
    _sync(x.device)
    t0 = time.perf_counter()
    for s in range(0, x.size(0), chunk):
        (x[s:s + chunk] @ x.T).max()  # touch the block so it is not optimised away
    _sync(x.device)
    return time.perf_counter() - t0


@torch.no_grad()
def worker(n, dim, depth, device, dense):
    from reid_ext.modeling.nformer import NFormer, dense_nformer_forward
    from reid_ext.modeling.nformer import model as nf_model
    from reid_ext.utils.neighbors import _chunk_rows
    device = torch.device(device)
    torch.manual_seed(0)
    model = NFormer(dim=dim, depth=depth, num_heads=2, num_landmarks=5, topk=20).to(device).eval()
    model(torch.randn(256, dim, device=device))  # warm-up
    x = torch.randn(n, dim, device=device)
    search = {}
    orig = nf_model.nformer_neighbors

    def timed_neighbors(*a, **kw):
        _sync(device)
        t = time.perf_counter()
        out = orig(*a, **kw)
        _sync(device)
        search["s"] = time.perf_counter() - t
        return out

    nf_model.nformer_neighbors = timed_neighbors
    t_products_before = bare_products(x, _chunk_rows(n))  # measured before and after the NFormer:
    # on a shared machine the load drifts, the ratio uses the mean of the two
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = _rss_bytes()
    _sync(device)
    t0 = time.perf_counter()
    out = model(x)
    _sync(device)
    t_nformer = time.perf_counter() - t0
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    nf_model.nformer_neighbors = orig
    t_products_after = bare_products(x, _chunk_rows(n))
    t_products = (t_products_before + t_products_after) / 2
    res = {"N": n, "dim": dim, "depth": depth, "device": str(device),
           "threads": torch.get_num_threads(), "input_GB": x.numel() * 4 / 1e9,
           "nformer_s": t_nformer, "search_s": search["s"], "products_s": t_products,
           "products_before_s": t_products_before, "products_after_s": t_products_after,
           "ratio": t_nformer / t_products, "peak_above_input_GB": peak / 1e9,
           "dense_GB_estimate": 3 * 2 * n * n * 4 / 1e9, "finite": bool(out.isfinite().all())}
    if dense:
        lm = model.draw_landmarks(n, device)
        t0 = time.perf_counter()
        ref = dense_nformer_forward(model, x, lm)
        res["dense_s"] = time.perf_counter() - t0
        res["max_abs_diff_vs_dense"] = float((ref - out).abs().max())
    print("RESULT " + json.dumps(res), flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[20000, 50000, 100000])
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--dense-n", type=int, default=4000, help="also compare with reid_ext's dense "
                   "reference (dense_nformer_forward) at this N (0 = skip)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args.worker, args.dim, args.depth, args.device, args.dense)
    sizes = ([args.dense_n] if args.dense_n else []) + args.sizes
    rows = []
    for n in sizes:
        cmd = [sys.executable, "-m", "reid_ext.benchmarks.nformer", "--worker", str(n),
               "--dim", str(args.dim), "--depth", str(args.depth), "--device", args.device,
               "--threads", str(args.threads)]
        if n == args.dense_n:
            cmd.append("--dense")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            print(f"N={n}: worker failed (rc {proc.returncode}):\n{proc.stderr[-2000:]}")
            continue
        r = json.loads(line[0][len("RESULT "):])
        rows.append(r)
        extra = ""
        if "dense_s" in r:
            extra = (f" | reid_ext's dense reference (dense_nformer_forward): {r['dense_s']:.2f} s, "
                     f"max |diff| {r['max_abs_diff_vs_dense']:.2e}")
        print(f"N={n:>7} d={r['dim']} L={r['depth']} {r['device']} x{r['threads']} threads | "
              f"NFormer {r['nformer_s']:.2f} s (top-k search {r['search_s']:.2f} s) | bare "
              f"products {r['products_s']:.2f} s (before {r['products_before_s']:.2f}, after "
              f"{r['products_after_s']:.2f}) | ratio {r['ratio']:.2f}x (goal <= 1.5) | "
              f"peak above input {r['peak_above_input_GB']:.2f} GB (goal <= 4) | dense GB "
              f"(estimate) {r['dense_GB_estimate']:.1f}{extra}", flush=True)
    save_json(args.json, {"sizes": args.sizes, "dense_n": args.dense_n, "goal_ratio": 1.5,
                          "goal_peak_GB": 4.0, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
