"""The SynthPerson table of issue 7: float vs Hamming codes at several code lengths, with and
without SSR, with and without AFR (several w), retrieval time per query.

    python projects/SSR/tools/synth_table.py --epochs 3 --out docs/benchmarks/ssr_synth_table.md

Trains ``projects/SSR/configs/synthperson.yml`` once per (bits, SSR on/off) in a subprocess
(``reid_ext.train_net``, CPU, the shortened recipe below), skipping runs whose exported codes
already exist (re-running the command resumes the table), then evaluates every exported
``.npz`` with ``afr_sweep.sweep`` and writes one Markdown table.
"""
import argparse
import glob
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from afr_sweep import sweep  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
CONFIG = "projects/SSR/configs/synthperson.yml"


def recipe(epochs):
    """Overrides of the shortened CPU recipe (96x48, batch 32, no LR step)."""
    return ["MODEL.DEVICE", "cpu", "INPUT.SIZE_TRAIN", "[96,48]", "INPUT.SIZE_TEST", "[96,48]",
            "INPUT.PADDING.SIZE", "4", "SOLVER.IMS_PER_BATCH", "32",
            "SOLVER.MAX_EPOCH", str(epochs), "SOLVER.STEPS", f"[{epochs}]",
            "SOLVER.WARMUP_ITERS", "10", "TEST.EVAL_PERIOD", str(epochs),
            "SOLVER.CHECKPOINT_PERIOD", str(epochs), "SEED", "0"]


def train(bits, ssr, args):
    out = os.path.join(args.logs, f"synth_{bits}bits_{'ssr' if ssr else 'nossr'}_{args.epochs}ep")
    found = glob.glob(os.path.join(out, "hash_codes_q*_g*.npz"))
    if found:
        return found[0], None
    cmd = [sys.executable, "-m", "reid_ext.train_net", "--config-file", CONFIG,
           *recipe(args.epochs), "MODEL.HASH.BITS", str(bits),
           "MODEL.HASH.SSR_WEIGHT", "1.0" if ssr else "0.0", "OUTPUT_DIR", out]
    print(" ".join(cmd), flush=True)
    t0 = time.time()
    with open(out + ".out", "w") as log:
        subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
    return glob.glob(os.path.join(out, "hash_codes_q*_g*.npz"))[0], time.time() - t0


def _cell(m):
    return f"{m['Rank-1']:.1f} / {m['mAP']:.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bits", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--w", type=int, nargs="+", default=[50, 200, 400])
    p.add_argument("--logs", default="logs/ssr")
    p.add_argument("--out", help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    header = ["bits", "SSR", "float32 (tanh h) R1 / mAP", "Hamming R1 / mAP",
              *[f"AFR w={w} R1 / mAP" for w in args.w], "ms/query float / Hamming / "
              f"AFR w={args.w[-1]}", "train time"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    chance = None
    for bits in args.bits:
        for ssr in (True, False):
            npz, secs = train(bits, ssr, args)
            rows = {name: (m, ms) for name, m, ms in sweep(np.load(npz), args.w)}
            chance = rows["random ranking (chance)"][0]
            fl = next(v for k, v in rows.items() if k.startswith("float32"))
            ham = next(v for k, v in rows.items() if k.startswith("Hamming"))
            afr = [rows[f"AFR w={w}"] for w in args.w]
            lines.append("| " + " | ".join([
                str(bits), "on" if ssr else "off", _cell(fl[0]), _cell(ham[0]),
                *[_cell(m) for m, _ in afr],
                f"{fl[1]:.3f} / {ham[1]:.3f} / {afr[-1][1]:.3f}",
                "" if secs is None else f"{secs / 60:.1f} min"]) + " |")
            print(lines[-1], flush=True)
    lines.append("")
    lines.append(f"Chance (random ranking): {_cell(chance)}.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
