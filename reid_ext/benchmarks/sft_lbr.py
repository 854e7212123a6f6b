"""LBR vs fastreid's k-reciprocal re-ranking on the same features: time, peak memory, mAP.

    python -m reid_ext.benchmarks.sft_lbr [--scales 0.25 1.0] [--krecip-max-scale 0.25]
                                          [--json PATH]

Features: clustered synthetic identities (Market-sized by default: 3,368 queries x
15,913 gallery, 2048-d, 750 test identities, 6 cameras, plus distractors), so that
re-ranking has structure to exploit. At each scale s the query and gallery counts are
multiplied by s (same query:gallery ratio), and so is the number of identities (same
images per identity). k-reciprocal (``reid_ext.evaluation.
k_reciprocal_distance``: faiss CPU search + Jaccard, k1 20, k2 6, lambda .3) runs only
up to ``--krecip-max-scale`` because it is O(N^2) in memory and slow on few cores; LBR
(n 50, tau .1) runs at every scale. Each method runs in a fresh process; peak memory
is that process's peak RSS minus its RSS once the features are built. ``main`` returns
one dict per (scale, method) (also written to ``--json``).
"""
import argparse
import multiprocessing as mp
import os
import platform
import resource
import time

import torch
from reid_ext.benchmarks import save_json



def make_features(num_query, num_gallery, dim=2048, num_ids=750, num_cams=6,
                  distractor_frac=0.15, latent=32, common=1.0, noise=0.8, seed=0):
    """Clustered features with the cosine structure of CNN embeddings.

    In a ``latent``-dim space: a shared offset (norm ``common * sqrt(latent)``, so
    all cosines are positive), a unit-variance identity centre, a camera offset (std
    .3) and per-image noise (std ``noise``); then a fixed random projection to ``dim``.
    Distractors (unique ids >= num_ids, never relevant) are offset + random latents.
    Returns q (Q, D), g (G, D) float32 tensors, q_pids, g_pids, q_cams, g_cams.
    """
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(latent, dim, generator=g) / latent ** 0.5
    offset = torch.randn(latent, generator=g)
    offset = offset / offset.norm() * common * latent ** 0.5
    centres = torch.randn(num_ids, latent, generator=g)
    cam_off = 0.3 * torch.randn(num_cams, latent, generator=g)

    def draw(n, pids):
        cams = torch.randint(0, num_cams, (n,), generator=g)
        z = centres[pids.clamp(max=num_ids - 1)] + cam_off[cams]
        dis = pids >= num_ids
        z[dis] = torch.randn(int(dis.sum()), latent, generator=g)
        z = offset + z + noise * torch.randn(n, latent, generator=g)
        return z @ proj, cams.numpy()

    q_pids = torch.randint(0, num_ids, (num_query,), generator=g)
    n_dis = int(distractor_frac * num_gallery)
    g_pids = torch.cat([torch.randint(0, num_ids, (num_gallery - n_dis,), generator=g),
                        num_ids + torch.arange(n_dis)])
    q, q_cams = draw(num_query, q_pids)
    gal, g_cams = draw(num_gallery, g_pids)
    return q, gal, q_pids.numpy(), g_pids.numpy(), q_cams, g_cams


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _worker(method, nq, ng, ids, dim, threads, queue):
    torch.set_num_threads(threads)
    from reid_ext.evaluation import evaluate_rank, k_reciprocal_distance, summarize
    from reid_ext.evaluation.lbr import local_blurring_rerank
    from fastreid.utils.compute_dist import build_dist
    q, g, qp, gp, qc, gc = make_features(nq, ng, dim, num_ids=ids)
    base = _rss_mb()
    t0 = time.perf_counter()
    if method == "plain":
        dist = build_dist(q, g, "cosine")
    elif method == "lbr":
        dist = local_blurring_rerank(q, g, topn=50, tau=0.1).numpy()
    elif method == "krecip":
        dist = k_reciprocal_distance(q, g, k1=20, k2=6, lambda_value=0.3, metric="cosine")
    else:
        raise ValueError(method)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    res = summarize(*evaluate_rank(dist, qp, gp, qc, gc))
    queue.put({"method": method, "Q": nq, "G": ng, "seconds": secs,
               "peak_mb": peak - base, "mAP": res["mAP"], "R1": res["Rank-1"]})


def run(method, nq, ng, ids, dim, threads):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_worker, args=(method, nq, ng, ids, dim, threads, queue))
    p.start()
    out = queue.get()
    p.join()
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-query", type=int, default=3368)
    ap.add_argument("--num-gallery", type=int, default=15913)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--num-ids", type=int, default=750)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--krecip-max-scale", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} threads, device cpu")
    rows = []
    for s in args.scales:
        nq, ng = max(1, round(args.num_query * s)), max(1, round(args.num_gallery * s))
        ids = max(2, round(args.num_ids * s))  # same images per identity at every scale
        methods = ["plain", "lbr"] + (["krecip"] if s <= args.krecip_max_scale else [])
        res = {m: run(m, nq, ng, ids, args.dim, args.threads) for m in methods}
        for m in methods:
            r = res[m]
            rows.append(r)
            print(f"scale {s:5.3f}  {nq:5d} x {ng:6d} ({ids} ids)  {m:7s}  {r['seconds']:9.2f} s  "
                  f"peak +{r['peak_mb']:8.0f} MiB  mAP {r['mAP']:6.2f}  "
                  f"(vs plain {r['mAP'] - res['plain']['mAP']:+6.2f})  R1 {r['R1']:6.2f}", flush=True)
        if "krecip" in res:
            print(f"   -> k-reciprocal / LBR time at {nq} x {ng}: "
                  f"{res['krecip']['seconds'] / res['lbr']['seconds']:.1f}x", flush=True)
    save_json(args.json, {"threads": args.threads, "dim": args.dim, "goal": 50.0, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
