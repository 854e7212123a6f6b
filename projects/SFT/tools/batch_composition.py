"""SFT against the batch composition: K images per identity in a batch of the same size.

    python projects/SFT/tools/batch_composition.py [--k 2 8] [--seeds 0 1] [--out table.md]

SFT blurs each feature with the others of its batch (weights exp(cos / sigma)); it needs
several images per identity (the official batch is 16 x 8), while VIPeR allows K = 2.
This trains ``projects/SFT/configs/synthperson.yml`` (the quickstart recipe with SFTHead,
batch 64) with ``DATALOADER.NUM_INSTANCE`` K and SFT on / off, for each seed (one
subprocess per run with ``reid_ext.reproduce.harness.train``: finished runs are reused,
interrupted ones resumed), and prints per K the plain and SFT results and their paired
difference, so the effect of K on what SFT adds is measured on one data set.
"""
import argparse
import os
import sys

import numpy as np

import reid_ext  # noqa: F401
from reid_ext.reproduce.harness import markdown, print_table, train

CONFIG = "projects/SFT/configs/synthperson.yml"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--k", type=int, nargs="+", default=[2, 8])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--logs", default="logs/sft/batch_composition")
    p.add_argument("--out", help="also write the table to this Markdown file")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE for every run")
    args = p.parse_args(argv)
    lines = []
    for k in args.k:
        res = {}
        for sft in (False, True):
            for seed in args.seeds:
                out = os.path.join(args.logs, f"k{k}_sft{int(sft)}_seed{seed}")
                opts = ["MODEL.DEVICE", "cpu", "DATALOADER.NUM_INSTANCE", str(k),
                        "MODEL.HEADS.SFT.ENABLED", str(sft), "SEED", str(seed), *args.opts,
                        "OUTPUT_DIR", out]
                res[sft, seed] = train(CONFIG, opts)["SynthPerson"]
        for metric in ("Rank-1", "mAP"):
            plain = [res[False, s][metric] for s in args.seeds]
            with_sft = [res[True, s][metric] for s in args.seeds]
            diff = np.subtract(with_sft, plain)
            lines.append([f"K = {k} ({64 // k} ids x {k})", metric,
                          " / ".join(f"{x:.1f}" for x in plain),
                          " / ".join(f"{x:.1f}" for x in with_sft),
                          f"{diff.mean():+.1f} ({' / '.join(f'{d:+.1f}' for d in diff)})"])
            print(lines[-1], flush=True)
    table = markdown(["batch", "metric", "plain (seeds " + ", ".join(map(str, args.seeds)) + ")",
                      "+ SFT", "SFT − plain: mean (per seed)"], lines)
    print_table(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
