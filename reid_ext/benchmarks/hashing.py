"""AFR (attribute-based fast retrieval) vs float32 cosine retrieval, side by side.

    python -m reid_ext.benchmarks.hashing                 # issue sizes
    python -m reid_ext.benchmarks.hashing --gallery 20000 --topk-gallery 50000   # quick

1. Full ranking of Q queries over a G gallery: AFR (A attribute bits, K identity bits,
   shortlist w; :func:`reid_ext.evaluation.hashing.afr_rank`) and identity-code Hamming
   ranking vs float32 cosine on D-d features (normalised matmul + the evaluator's
   ``rank_by_distance``). Codes and features are prepared (normalised / packed) before
   timing; the timed part ends with a (Q, G) ranking.
2. Top-k search over a larger gallery: AFR top-k vs ``reid_ext.utils.neighbors.
   topk_similarity`` (float32 cosine); faiss ``IndexBinaryFlat`` on the identity codes
   is shown for reference.
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


def _time(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        out = None
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _codes(n, bits, gen, chunk=65536):
    out = torch.empty(n, (bits + 7) // 8, dtype=torch.uint8)
    for s in range(0, n, chunk):
        out[s:s + chunk] = pack_bits(torch.rand(min(chunk, n - s), bits, generator=gen) < 0.5)
    return out


def _feats(n, dim, gen, chunk=65536):
    out = torch.empty(n, dim)
    for s in range(0, n, chunk):
        out[s:s + chunk] = F.normalize(torch.randn(min(chunk, n - s), dim, generator=gen), dim=1)
    return out


def _available_bytes():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def full_ranking(args, gen):
    q_feat, g_feat = _feats(args.num_query, args.dim, gen), _feats(args.gallery, args.dim, gen)
    qa, ga = _codes(args.num_query, args.attr_bits, gen), _codes(args.gallery, args.attr_bits, gen)
    qc, gc = _codes(args.num_query, args.bits, gen), _codes(args.gallery, args.bits, gen)

    t_float, rank_f = _time(lambda: rank_by_distance(1 - q_feat @ g_feat.T), args.repeat)
    t_ham, rank_h = _time(lambda: hamming_rank(qc, gc), args.repeat)
    t_afr, rank_a = _time(lambda: afr_rank(qa, ga, qc, gc, args.w), args.repeat)
    for name, r in (("float", rank_f), ("hamming", rank_h), ("afr", rank_a)):
        r = np.asarray(r)
        assert r.shape == (args.num_query, args.gallery), name
    assert (np.sort(np.asarray(rank_a[:3]), axis=1) == np.arange(args.gallery)).all()
    float_bytes = args.dim * 4
    code_bytes, attr_bytes = gc.size(1), ga.size(1)
    q = args.num_query
    print(f"\n## Full ranking: {q} queries x {args.gallery} gallery\n")
    print("| method | ms/query | speed-up vs float | bytes/item | memory ratio |")
    print("|---|---|---|---|---|")
    print(f"| float32 cosine, {args.dim}-d (matmul + argsort) | {t_float / q * 1e3:.2f} | 1.0x "
          f"| {float_bytes} | 1.0x |")
    print(f"| Hamming, {args.bits} bits | {t_ham / q * 1e3:.2f} | {t_float / t_ham:.1f}x "
          f"| {code_bytes} | {float_bytes / code_bytes:.1f}x |")
    print(f"| AFR, {args.attr_bits} attr bits + {args.bits} bits, w={args.w} | "
          f"{t_afr / q * 1e3:.2f} | {t_float / t_afr:.1f}x | {code_bytes + attr_bytes} | "
          f"{float_bytes / (code_bytes + attr_bytes):.1f}x |")
    return {"queries": q, "gallery": args.gallery, "float_s": t_float, "hamming_s": t_ham,
            "afr_s": t_afr, "float_bytes": float_bytes, "hamming_bytes": code_bytes,
            "afr_bytes": code_bytes + attr_bytes}


def topk_search(args, gen):
    n = args.topk_gallery
    # features + codes, one 64-query similarity chunk and its top-k copy, 1 GiB slack
    need = n * (args.dim * 4 + args.bits // 8 + 8) * 1.05 + 2 * 64 * n * 4 + 2 ** 30
    avail = _available_bytes()
    if avail is not None and need > avail * 0.9:
        fit = int(n * avail * 0.9 / need) // 1000 * 1000
        print(f"\n(top-k: a {n}-item gallery needs ~{need / 2 ** 30:.1f} GiB, "
              f"{avail / 2 ** 30:.1f} GiB available: measuring {fit} items instead)")
        n = fit
    q_feat, g_feat = _feats(args.num_query, args.dim, gen), _feats(n, args.dim, gen)
    qa, ga = _codes(args.num_query, args.attr_bits, gen), _codes(n, args.attr_bits, gen)
    qc, gc = _codes(args.num_query, args.bits, gen), _codes(n, args.bits, gen)
    k, q = args.topk, args.num_query

    t_float, (_, idx_f) = _time(lambda: topk_similarity(q_feat, g_feat, k, normalize=False),
                                args.repeat)
    t_afr, idx_a = _time(lambda: afr_rank(qa, ga, qc, gc, args.w, topk=k), args.repeat)
    assert idx_f.shape == idx_a.shape == (q, k)
    rows = [("float32 cosine top-k (topk_similarity)", t_float, args.dim * 4),
            (f"AFR top-k, w={args.w}", t_afr, gc.size(1) + ga.size(1))]
    try:
        import faiss
        index = faiss.IndexBinaryFlat(args.bits)
        index.add(gc.numpy())
        t_fb, _ = _time(lambda: index.search(qc.numpy(), k), args.repeat)
        rows.append((f"faiss IndexBinaryFlat top-k, {args.bits} bits (no AFR)", t_fb, gc.size(1)))
    except ImportError:
        pass
    print(f"\n## Top-{k} search: {q} queries x {n} gallery\n")
    print("| method | ms/query | speed-up vs float | bytes/item |")
    print("|---|---|---|---|")
    for name, t, b in rows:
        print(f"| {name} | {t / q * 1e3:.2f} | {t_float / t:.1f}x | {b} |")
    out = {"queries": q, "gallery": n, "requested_gallery": args.topk_gallery, "k": k,
           "float_s": t_float, "afr_s": t_afr, "float_bytes": args.dim * 4,
           "afr_bytes": gc.size(1) + ga.size(1)}
    if len(rows) > 2:
        out["faiss_binary_s"] = rows[2][1]
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
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}, numpy {np.__version__}, CPU")
    res = {"threads": torch.get_num_threads(), "dim": args.dim, "bits": args.bits,
           "attr_bits": args.attr_bits, "w": args.w, "goal": 15.0}
    res["full"] = full = full_ranking(args, gen)
    speedup = full["float_s"] / full["afr_s"]
    print(f"\nAFR vs float32 full ranking: {speedup:.1f}x (goal >= 15x)")
    if args.topk_gallery:
        res["topk"] = topk_search(args, gen)
    return save_json(args.json, res)


if __name__ == "__main__":
    main()
