"""AFR (attribute-based fast retrieval) vs float32 cosine retrieval, side by side.

    python -m reid_ext.benchmarks.hashing                 # issue sizes
    python -m reid_ext.benchmarks.hashing --gallery 20000 --topk-gallery 50000   # quick

1. Full ranking of Q queries over a G gallery: AFR (A attribute bits, K identity bits,
   shortlist w; :func:`reid_ext.evaluation.hashing.afr_rank`) and identity-code Hamming
   ranking vs the fastest exact float32 cosine ranking on D-d features, among: matmul +
   numpy argsort (the evaluator's ``rank_by_distance``), matmul + ``torch.sort``, and
   faiss's flat inner-product search with k = G. Codes and features are prepared
   (normalised / packed) before timing; every timed result is a (Q, G) ranking.
2. Top-k search over a larger gallery: AFR top-k vs the fastest exact float32 top-k
   among ``reid_ext.utils.neighbors.topk_similarity``, matmul + ``torch.topk`` and faiss's
   flat inner-product search; faiss ``IndexBinaryFlat`` on the identity codes is shown
   for reference.

faiss's float search is ``faiss.knn(..., METRIC_INNER_PRODUCT)``: the function
``IndexFlatIP.search`` runs (``knn_inner_product``), called on the gallery array itself,
so the 8 GB gallery of part 2 is not copied into an index. faiss runs with as many
OpenMP threads as torch. The reference of each ratio (``float_ref``) is the fastest.
Random data (the speed does not depend on the values; stage-1 ties are as frequent as
with real 30-bit attribute codes or more). Times are medians of ``--repeat`` runs.
``main`` returns the results as a dict (also written to ``--json``).
"""
import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from ..evaluation.hashing import afr_rank, hamming_rank, pack_bits
from ..evaluation.rank import rank_by_distance
from ..utils.neighbors import topk_similarity
from reid_ext.benchmarks import save_json


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, repeat, device="cpu"):
    times, out = [], None
    for _ in range(repeat):
        out = None
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _codes(n, bits, gen, device="cpu", chunk=65536):
    out = torch.empty(n, (bits + 7) // 8, dtype=torch.uint8)
    for s in range(0, n, chunk):
        out[s:s + chunk] = pack_bits(torch.rand(min(chunk, n - s), bits, generator=gen) < 0.5)
    return out.to(device)  # drawn on the CPU: the same data on every device


def _feats(n, dim, gen, device="cpu", chunk=65536):
    out = torch.empty(n, dim)
    for s in range(0, n, chunk):
        out[s:s + chunk] = F.normalize(torch.randn(min(chunk, n - s), dim, generator=gen), dim=1)
    return out.to(device)


def _available_bytes(device="cpu"):
    if torch.device(device).type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def _faiss_flat_ip(q_feat, g_feat, k):
    """faiss's exact inner-product search (IndexFlatIP's kernel) -> (Q, k) int64 indices."""
    import faiss
    faiss.omp_set_num_threads(torch.get_num_threads())
    return faiss.knn(q_feat.numpy(), g_feat.numpy(), k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def _float_references(candidates, repeat, shape, device):
    """Time every exact float32 candidate {name: fn}; -> ({name: seconds}, fastest name).
    Each result must have ``shape``. faiss (CPU only here) runs only for CPU inputs, and
    is left out when it is not installed."""
    times = {}
    for name, fn in candidates.items():
        if name.startswith("faiss") and torch.device(device).type != "cpu":
            continue
        try:
            t, out = _time(fn, repeat, device)
        except ImportError:
            continue
        assert tuple(out.shape) == shape, name
        times[name] = t
    return times, min(times, key=times.get)


def full_ranking(args, gen):
    dev = args.device
    q_feat, g_feat = (_feats(m, args.dim, gen, dev) for m in (args.num_query, args.gallery))
    qa, ga = (_codes(m, args.attr_bits, gen, dev) for m in (args.num_query, args.gallery))
    qc, gc = (_codes(m, args.bits, gen, dev) for m in (args.num_query, args.gallery))
    q, n = args.num_query, args.gallery

    floats, ref = _float_references({
        "matmul + numpy argsort": lambda: rank_by_distance(1 - q_feat @ g_feat.T),
        "matmul + torch.sort": lambda: torch.argsort(q_feat @ g_feat.T, dim=1, descending=True),
        "faiss flat IP (k = G)": lambda: _faiss_flat_ip(q_feat, g_feat, n),
    }, args.repeat, (q, n), dev)
    t_float = floats[ref]
    t_ham, rank_h = _time(lambda: hamming_rank(qc, gc), args.repeat, dev)
    t_afr, rank_a = _time(lambda: afr_rank(qa, ga, qc, gc, args.w), args.repeat, dev)
    for name, r in (("hamming", rank_h), ("afr", rank_a)):
        assert tuple(r.shape) == (q, n), name
    assert (np.sort(rank_a[:3].cpu().numpy(), axis=1) == np.arange(n)).all()
    float_bytes = args.dim * 4
    code_bytes, attr_bytes = gc.size(1), ga.size(1)
    print(f"\n## Full ranking: {q} queries x {n} gallery (reference: {ref})\n")
    print("| method | ms/query | speed-up vs the float reference | bytes/item | memory ratio |")
    print("|---|---|---|---|---|")
    for name, t in floats.items():
        print(f"| float32 cosine, {args.dim}-d, {name} | {t / q * 1e3:.2f} | {t_float / t:.2f}x "
              f"| {float_bytes} | 1.0x |")
    print(f"| Hamming, {args.bits} bits | {t_ham / q * 1e3:.2f} | {t_float / t_ham:.1f}x "
          f"| {code_bytes} | {float_bytes / code_bytes:.1f}x |")
    print(f"| AFR, {args.attr_bits} attr bits + {args.bits} bits, w={args.w} | "
          f"{t_afr / q * 1e3:.2f} | {t_float / t_afr:.1f}x | {code_bytes + attr_bytes} | "
          f"{float_bytes / (code_bytes + attr_bytes):.1f}x |")
    return {"queries": q, "gallery": n, "float_s": t_float, "float_ref": ref, "float_all_s": floats,
            "hamming_s": t_ham, "afr_s": t_afr, "float_bytes": float_bytes,
            "hamming_bytes": code_bytes, "afr_bytes": code_bytes + attr_bytes}


def topk_search(args, gen):
    n = args.topk_gallery
    # features + codes, the (Q, n) similarities of matmul + topk and their copy, 1 GiB slack
    need = (n * (args.dim * 4 + args.bits // 8 + 8) * 1.05 + 2 * max(64, args.num_query) * n * 4
            + 2 ** 30)
    avail = _available_bytes(args.device)
    if avail is not None and need > avail * 0.9:
        fit = int(n * avail * 0.9 / need) // 1000 * 1000
        print(f"\n(top-k: a {n}-item gallery needs ~{need / 2 ** 30:.1f} GiB, "
              f"{avail / 2 ** 30:.1f} GiB available: measuring {fit} items instead)")
        n = fit
    dev = args.device
    q_feat, g_feat = _feats(args.num_query, args.dim, gen, dev), _feats(n, args.dim, gen, dev)
    qa, ga = (_codes(m, args.attr_bits, gen, dev) for m in (args.num_query, n))
    qc, gc = (_codes(m, args.bits, gen, dev) for m in (args.num_query, n))
    k, q = args.topk, args.num_query

    floats, ref = _float_references({
        "topk_similarity": lambda: topk_similarity(q_feat, g_feat, k, normalize=False)[1],
        "matmul + torch.topk": lambda: (q_feat @ g_feat.T).topk(k, dim=1).indices,
        "faiss flat IP": lambda: _faiss_flat_ip(q_feat, g_feat, k),
    }, args.repeat, (q, k), dev)
    t_float = floats[ref]
    t_afr, idx_a = _time(lambda: afr_rank(qa, ga, qc, gc, args.w, topk=k), args.repeat, dev)
    assert idx_a.shape == (q, k)
    rows = [(f"float32 cosine top-k, {name}", t, args.dim * 4) for name, t in floats.items()]
    rows.append((f"AFR top-k, w={args.w}", t_afr, gc.size(1) + ga.size(1)))
    try:
        import faiss
        if torch.device(dev).type != "cpu":
            raise ImportError("faiss CPU index: CPU runs only")
        index = faiss.IndexBinaryFlat(args.bits)
        index.add(gc.numpy())
        t_fb, _ = _time(lambda: index.search(qc.numpy(), k), args.repeat)
        rows.append((f"faiss IndexBinaryFlat top-k, {args.bits} bits (no AFR)", t_fb, gc.size(1)))
    except ImportError:
        pass
    print(f"\n## Top-{k} search: {q} queries x {n} gallery (reference: {ref})\n")
    print("| method | ms/query | speed-up vs the float reference | bytes/item |")
    print("|---|---|---|---|")
    for name, t, b in rows:
        print(f"| {name} | {t / q * 1e3:.2f} | {t_float / t:.1f}x | {b} |")
    out = {"queries": q, "gallery": n, "requested_gallery": args.topk_gallery, "k": k,
           "float_s": t_float, "float_ref": ref, "float_all_s": floats, "afr_s": t_afr,
           "float_bytes": args.dim * 4, "afr_bytes": gc.size(1) + ga.size(1)}
    if rows[-1][0].startswith("faiss IndexBinaryFlat"):
        out["faiss_binary_s"] = rows[-1][1]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--num-query", type=int, default=100)
    p.add_argument("--gallery", type=int, default=200000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--attr-bits", type=int, default=30)
    p.add_argument("--bits", type=int, default=2048)
    p.add_argument("--w", type=int, default=2000)
    p.add_argument("--topk-gallery", type=int, default=1000000, help="0 = skip the top-k part")
    p.add_argument("--topk", type=int, default=100)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu | cuda (faiss runs on CPU inputs only)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    gen = torch.Generator().manual_seed(args.seed)
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else None
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}, numpy {np.__version__}, "
          f"device {args.device}" + (f" ({device_name})" if device_name else ""))
    res = {"threads": torch.get_num_threads(), "dim": args.dim, "bits": args.bits,
           "attr_bits": args.attr_bits, "w": args.w, "goal": 15.0, "device": args.device,
           "device_name": device_name}
    res["full"] = full = full_ranking(args, gen)
    speedup = full["float_s"] / full["afr_s"]
    print(f"\nAFR vs the fastest float32 full ranking ({full['float_ref']}): {speedup:.1f}x "
          f"(goal >= 15x)")
    if args.topk_gallery:
        res["topk"] = topk_search(args, gen)
    return save_json(args.json, res)


if __name__ == "__main__":
    main()
