"""Float, Hamming and AFR results for several shortlist sizes w from exported codes.

    python projects/SSR/tools/afr_sweep.py logs/ssr/x/hash_codes_q*_g*.npz --w 25 50 100 200

Reads the ``.npz`` written by the ``ssr_hashing`` evaluation variant (``TEST.HASH.EXPORT``)
and prints a Markdown table (Rank-1, mAP, ms/query) for the float features (cosine), the
identity-code Hamming ranking and AFR at each w; the chance level (random ranking) is
shown for reference.
"""
import argparse
import time

import numpy as np
import torch

from reid_ext.evaluation.hashing import afr_rank, hamming_rank
from reid_ext.evaluation.rank import evaluate_ranking, rank_by_distance, summarize


def _timed(fn, num_q):
    t0 = time.perf_counter()
    ranking = fn()
    return ranking, (time.perf_counter() - t0) * 1e3 / num_q


def sweep(d, ws, seed=0):
    """Rows (name, metrics, ms/query or None) for the arrays of one exported ``.npz``."""
    labels = (d["query_pids"], d["gallery_pids"], d["query_camids"], d["gallery_camids"])
    qc, gc = torch.from_numpy(d["query_codes"]), torch.from_numpy(d["gallery_codes"])
    nq, ng = len(qc), len(gc)
    rng = np.random.default_rng(seed)
    rand = np.stack([rng.permutation(ng) for _ in range(nq)])
    rows = [("random ranking (chance)", summarize(*evaluate_ranking(rand, *labels)), None)]
    if "query_feats" in d:
        qf = torch.nn.functional.normalize(torch.from_numpy(d["query_feats"]), dim=1)
        gf = torch.nn.functional.normalize(torch.from_numpy(d["gallery_feats"]), dim=1)
        r, ms = _timed(lambda: rank_by_distance(1 - qf @ gf.T), nq)
        rows.append((f"float32 cosine ({qf.shape[1]}-d)", summarize(*evaluate_ranking(r, *labels)), ms))
    r, ms = _timed(lambda: hamming_rank(qc, gc), nq)
    rows.append((f"Hamming {qc.shape[1] * 8} bits", summarize(*evaluate_ranking(r, *labels)), ms))
    if "query_attr_codes" in d:
        qa, ga = torch.from_numpy(d["query_attr_codes"]), torch.from_numpy(d["gallery_attr_codes"])
        for w in ws:
            r, ms = _timed(lambda: afr_rank(qa, ga, qc, gc, w), nq)
            rows.append((f"AFR w={w}", summarize(*evaluate_ranking(r, *labels)), ms))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("codes", help="hash_codes_q<Q>_g<G>.npz")
    p.add_argument("--w", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    d = np.load(args.codes)
    rows = sweep(d, args.w, args.seed)
    print(f"{len(d['query_codes'])} queries, {len(d['gallery_codes'])} gallery items ({args.codes})\n")
    print("| ranking | Rank-1 | mAP | ms/query |")
    print("|---|---|---|---|")
    for name, m, ms in rows:
        print(f"| {name} | {m['Rank-1']:.1f} | {m['mAP']:.1f} | "
              f"{'' if ms is None else f'{ms:.3f}'} |")


if __name__ == "__main__":
    main()
