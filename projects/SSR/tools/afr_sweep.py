"""Hamming and AFR results for several shortlist sizes w from exported codes.

    python projects/SSR/tools/afr_sweep.py logs/ssr/x/hash_codes_q*_g*.npz --w 25 50 100 200

Reads the ``.npz`` written by the ``ssr_hashing`` evaluation variant (``TEST.HASH.EXPORT``)
and prints a Markdown table (Rank-1, mAP, ms/query) for the identity-code Hamming ranking
and AFR at each w; the chance level (random ranking) is shown for reference.
"""
import argparse
import time

import numpy as np
import torch

from reid_ext.evaluation.hashing import afr_rank, hamming_rank
from reid_ext.evaluation.rank import evaluate_ranking, summarize


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("codes", help="hash_codes_q<Q>_g<G>.npz")
    p.add_argument("--w", type=int, nargs="+", default=[25, 50, 100, 200, 400])
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    d = np.load(args.codes)
    labels = (d["query_pids"], d["gallery_pids"], d["query_camids"], d["gallery_camids"])
    qc, gc = torch.from_numpy(d["query_codes"]), torch.from_numpy(d["gallery_codes"])
    nq, ng = len(qc), len(gc)
    rows = []
    rng = np.random.default_rng(args.seed)
    rand = np.stack([rng.permutation(ng) for _ in range(nq)])
    rows.append(("random ranking (chance)", summarize(*evaluate_ranking(rand, *labels)), None))
    t0 = time.perf_counter()
    r = hamming_rank(qc, gc)
    rows.append((f"Hamming {qc.shape[1] * 8} bits", summarize(*evaluate_ranking(r, *labels)),
                 (time.perf_counter() - t0) / nq * 1e3))
    if "query_attr_codes" in d:
        qa, ga = torch.from_numpy(d["query_attr_codes"]), torch.from_numpy(d["gallery_attr_codes"])
        for w in args.w:
            t0 = time.perf_counter()
            r = afr_rank(qa, ga, qc, gc, w)
            rows.append((f"AFR w={w}", summarize(*evaluate_ranking(r, *labels)),
                         (time.perf_counter() - t0) / nq * 1e3))
    print(f"{nq} queries, {ng} gallery items ({args.codes})\n")
    print("| ranking | Rank-1 | mAP | ms/query |")
    print("|---|---|---|---|")
    for name, m, ms in rows:
        print(f"| {name} | {m['Rank-1']:.1f} | {m['mAP']:.1f} | "
              f"{'' if ms is None else f'{ms:.3f}'} |")


if __name__ == "__main__":
    main()
