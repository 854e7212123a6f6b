"""LBR vs its two references on the same features: the plain cosine distance matrix (the
floor of any dense re-ranking) and fastreid's k-reciprocal re-ranking; time, peak memory, mAP.

    python -m reid_ext.benchmarks.sft_lbr [--scales 0.25 1.0] [--krecip-max-scale 0.25]
                                          [--json PATH]

Features: clustered synthetic identities (Market-sized by default: 3,368 queries x
15,913 gallery, 2048-d, 750 test identities, 6 cameras, plus distractors), so that
re-ranking has structure to exploit. At each scale s the query and gallery counts are
multiplied by s (same query:gallery ratio), and so is the number of identities (same
images per identity). Methods, each in a fresh process:

- ``plain``: fastreid's ``build_dist(q, g, "cosine")`` (normalise, product, ``1 - s``);
- ``plain_torch``: the same (Q, G) cosine distances with nothing extra (normalise, one
  ``torch.mm``, ``1 - s`` in place). The plain reference of the ratio is the faster of
  the two (recorded as ``plain_ref``): any re-ranking returning a dense (Q, G) matrix pays
  at least this product;
- ``lbr``: ``local_blurring_rerank`` (n 50, tau .1), dense (Q, G) output;
- ``lbr_topn``: ``lbr_topn``, the top-n only (no (Q, G) output; no mAP: it ranks the
  top-n exactly as ``lbr``);
- ``krecip``: ``reid_ext.evaluation.k_reciprocal_distance`` (fastreid's Jaccard
  re-ranking on the faiss CPU search, k1 20, k2 6, lambda .3), only up to
  ``--krecip-max-scale`` because it is O(N^2) in memory and slow on few cores.

Peak memory is the process's peak RSS minus its RSS once the features are built (on
CUDA: the most memory allocated on the device above what the features hold). Time: the
call, until its (Q, G) result exists on its device (the mAP evaluation is not timed).
Goals at Market size: LBR <= 1.5x the plain reference, >= 10x faster than k-reciprocal.
``main`` returns one dict per (scale, method) (also written to ``--json``).
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


def _worker(method, nq, ng, ids, dim, threads, device, queue):
    torch.set_num_threads(threads)
    from reid_ext.evaluation import evaluate_rank, k_reciprocal_distance, summarize
    import torch.nn.functional as F
    from reid_ext.evaluation.lbr import lbr_topn, local_blurring_rerank
    from fastreid.utils.compute_dist import build_dist
    q, g, qp, gp, qc, gc = make_features(nq, ng, dim, num_ids=ids)
    # k-reciprocal is fastreid's CPU code (faiss CPU search): it runs on the CPU features
    dev = torch.device("cpu" if method == "krecip" else device)
    q, g = q.to(dev), g.to(dev)
    cuda = dev.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        base = _rss_mb()
    t0 = time.perf_counter()
    if method == "plain":
        dist = build_dist(q, g, "cosine")  # numpy on the CPU (fastreid's API)
    elif method == "plain_torch":
        dist = torch.mm(F.normalize(q, dim=1), F.normalize(g, dim=1).t())
        dist = torch.sub(torch.ones((), device=dev), dist, out=dist)
    elif method == "lbr":
        dist = local_blurring_rerank(q, g, topn=50, tau=0.1)
    elif method == "lbr_topn":
        dist = None
        lbr_topn(q, g, topn=50, tau=0.1)
    elif method == "krecip":
        dist = k_reciprocal_distance(q, g, k1=20, k2=6, lambda_value=0.3, metric="cosine")
    else:
        raise ValueError(method)
    sync()
    secs = time.perf_counter() - t0  # until the (Q, G) result exists on its device
    if cuda:
        peak = (torch.cuda.max_memory_allocated(dev) - base) / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base  # KiB -> MiB
    if isinstance(dist, torch.Tensor):
        dist = dist.cpu().numpy()
    res = summarize(*evaluate_rank(dist, qp, gp, qc, gc)) if dist is not None else {}
    queue.put({"method": method, "Q": nq, "G": ng, "device": str(dev), "seconds": secs,
               "peak_mb": peak, "mAP": res.get("mAP"), "R1": res.get("Rank-1")})


def run(method, nq, ng, ids, dim, threads, device="cpu"):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_worker, args=(method, nq, ng, ids, dim, threads, device, queue))
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
    ap.add_argument("--device", default="cpu", help="cpu | cuda (k-reciprocal always runs on the CPU)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, {args.threads} threads, device {args.device}"
          + (f" ({device_name})" if device_name else ""))
    rows = []
    for s in args.scales:
        nq, ng = max(1, round(args.num_query * s)), max(1, round(args.num_gallery * s))
        ids = max(2, round(args.num_ids * s))  # same images per identity at every scale
        methods = ["plain", "plain_torch", "lbr", "lbr_topn"]
        methods += ["krecip"] if s <= args.krecip_max_scale else []
        res = {m: run(m, nq, ng, ids, args.dim, args.threads, args.device) for m in methods}
        ref = min(("plain", "plain_torch"), key=lambda m: res[m]["seconds"])
        for m in methods:
            r = res[m]
            r["plain_ref"] = ref
            rows.append(r)
            quality = (f"mAP {r['mAP']:6.2f} (vs plain {r['mAP'] - res['plain']['mAP']:+6.2f})  "
                       f"R1 {r['R1']:6.2f}" if r["mAP"] is not None else "(top-n only: no mAP)")
            print(f"scale {s:5.3f}  {nq:5d} x {ng:6d} ({ids} ids)  {m:11s}  {r['seconds']:9.2f} s  "
                  f"peak +{r['peak_mb']:8.0f} MiB  {quality}", flush=True)
        print(f"   -> LBR / plain ({ref}) at {nq} x {ng}: "
              f"{res['lbr']['seconds'] / res[ref]['seconds']:.2f}x (goal <= 1.5x)", flush=True)
        if "krecip" in res:
            print(f"   -> k-reciprocal / LBR time at {nq} x {ng}: "
                  f"{res['krecip']['seconds'] / res['lbr']['seconds']:.1f}x (goal >= 10x)", flush=True)
    save_json(args.json, {"threads": args.threads, "dim": args.dim, "device": args.device,
                          "device_name": device_name, "goal_vs_plain": 1.5, "goal_vs_krecip": 10.0,
                          "rows": rows})
    return rows


if __name__ == "__main__":
    main()
