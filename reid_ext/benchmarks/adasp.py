"""Forward + backward time of ``adasp_loss`` vs fastreid's ``triplet_loss`` (hard mining).

    python -m reid_ext.benchmarks.adasp [--batches 64 128 256] [--dim 2048] [--k 8]
                                        [--device cpu|cuda] [--repeats 20] [--threads N]
                                        [--json PATH]

Both losses get the same (B, D) float32 features (P = B / K identities x K images,
clustered) with ``requires_grad``; one timing = loss forward + ``backward()`` on the
features (CUDA: synchronised). The median over ``--repeats`` runs (after 3 warm-up runs)
and the minimum
(the least disturbed run on a shared machine) are reported, with the ratio AdaSP /
triplet (goal: <= 2); the two losses alternate run by run. triplet_loss is called as in
the official comparison configs: soft margin (margin 0), no feature normalisation, hard
mining. AdaSP uses temp 0.04 and loss_type "adasp" (the three variants cost the same).
``main`` returns the results as a dict (also written to ``--json``).
"""
import argparse
import platform
import statistics
import time

import torch
from fastreid.modeling.losses import triplet_loss

from reid_ext.modeling.losses import adasp_loss
from reid_ext.benchmarks import save_json


def make_batch(batch, dim, k, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = batch // k
    centres = torch.randn(p, dim, generator=g)
    x = centres.repeat_interleave(k, 0) + 1.5 * torch.randn(p * k, dim, generator=g)
    return x.to(device), torch.arange(p).repeat_interleave(k).to(device)


def time_once(fn, feats, targets, device):
    x = feats.detach().requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    fn(x, targets).backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


def time_pair(fns, feats, targets, repeats, device):
    """Alternate the losses run by run (fair under a shared, fluctuating machine);
    returns per loss (median, min) in seconds."""
    times = [[] for _ in fns]
    for r in range(3 + repeats):
        for i, fn in enumerate(fns):
            t = time_once(fn, feats, targets, device)
            if r >= 3:
                times[i].append(t)
    return [(statistics.median(t), min(t)) for t in times]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--k", type=int, default=8, help="images per identity")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    print(f"device {device} ({name}), torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, D {args.dim}, K {args.k}, "
          f"{args.repeats} runs each")
    print(f"{'batch':>6} {'adasp ms':>10} {'triplet ms':>11} {'ratio':>6}   "
          f"{'adasp min':>10} {'triplet min':>12} {'ratio':>6}")
    adasp = lambda x, t: adasp_loss(x, t, 0.04, "adasp")  # noqa: E731
    triplet = lambda x, t: triplet_loss(x, t, 0.0, False, True)  # noqa: E731
    res = {"device": str(device), "device_name": name, "threads": torch.get_num_threads(),
           "dim": args.dim, "k": args.k, "repeats": args.repeats, "goal": 2.0, "rows": []}
    for b in args.batches:
        feats, targets = make_batch(b, args.dim, args.k, device)
        (ta, ma), (tt, mt) = time_pair((adasp, triplet), feats, targets, args.repeats, device)
        print(f"{b:>6} {ta * 1e3:>10.2f} {tt * 1e3:>11.2f} {ta / tt:>6.2f}   "
              f"{ma * 1e3:>10.2f} {mt * 1e3:>12.2f} {ma / mt:>6.2f}")
        res["rows"].append({"batch": b, "adasp_median_s": ta, "triplet_median_s": tt,
                            "adasp_min_s": ma, "triplet_min_s": mt})
    return save_json(args.json, res)


if __name__ == "__main__":
    main()
