"""What each component adds, on SynthPerson: the ablation table of projects/Combined.

    python projects/Combined/tools/ablation.py [--out docs/combined_ablation.md]

Trains ``projects/Combined/configs/synth_stage1.yml`` (as shipped, CPU) with components
switched off one at a time from the full model backwards (each row adds one component to
the row above), then stage 2 (the NFormer) on the full model, with
``reid_ext.reproduce.harness.train`` (one subprocess per row; finished rows are reused,
interrupted ones resumed), then leave-one-out rows (the full stage-1 model minus one
component), then the diagnosis rows that isolate why a component lowers accuracy (see
projects/Combined/README.md). LBR is reported for every row; Hamming/AFR for the rows
with the SSR branch.
"""
import argparse
import os
import sys

import reid_ext  # noqa: F401
from reid_ext.reproduce.harness import markdown, print_table, train

STAGE1 = "projects/Combined/configs/synth_stage1.yml"
STAGE2 = "projects/Combined/configs/synth_stage2.yml"
BASELINE = ["MODEL.META_ARCHITECTURE", "ReidBaseline", "TEST.HASH.ENABLED", "False"]
ROWS = [  # (name, overrides of synth_stage1.yml)
    ("baseline: ResNet-18, CE + triplet", BASELINE + [
        "MODEL.BACKBONE.ATTENTION.TYPE", "none", "MODEL.HEADS.SFT.ENABLED", "False",
        "MODEL.LOSSES.NAME", '("CrossEntropyLoss","TripletLoss")']),
    ("+ C2F attention", BASELINE + [
        "MODEL.HEADS.SFT.ENABLED", "False",
        "MODEL.LOSSES.NAME", '("CrossEntropyLoss","TripletLoss")']),
    ("+ AdaSP (CE + AdaSP instead of triplet)", BASELINE + ["MODEL.HEADS.SFT.ENABLED", "False"]),
    ("+ SFT (training)", BASELINE),
    ("+ SSR hash branch = CombinedReID stage 1", []),
]
LEAVE_ONE_OUT = [  # the full stage-1 model with one component removed
    ("full model without SFT", ["MODEL.HEADS.SFT.ENABLED", "False"]),
]
CE_TRIPLET = ["MODEL.HEADS.SFT.ENABLED", "False", "MODEL.LOSSES.NAME",
              '("CrossEntropyLoss","TripletLoss")']
DIAGNOSIS = [  # (name, overrides of synth_stage1.yml): one change against a row above
    # SFT: the metric loss on the SFT view too, as before MODEL.HEADS.SFT.METRIC_VIEWS
    ("diag: + SFT, AdaSP also on the SFT view (METRIC_VIEWS all)",
     BASELINE + ["MODEL.HEADS.SFT.METRIC_VIEWS", "all"]),
    # C2F: is it the sparse attention, or any attention at this map size and budget?
    ("diag: + full attention instead of C2F", BASELINE + CE_TRIPLET + [
        "MODEL.BACKBONE.ATTENTION.TYPE", "full"]),
    # the seed spread behind the C2F and baseline rows
    ("diag: baseline, seed 1", ROWS[0][1] + ["SEED", "1"]),
    ("diag: + C2F attention, seed 1", ROWS[1][1] + ["SEED", "1"]),
]
# NFormer: half the stage-2 budget of projects/NFormer's SynthPerson config (the Combined
# default before 2026-12-03), against the 8 epochs both configs now use
STAGE2_DIAGNOSIS = [("diag: + NFormer, 4 stage-2 epochs", ["SOLVER.NFORMER.MAX_EPOCH", "4",
                                                            "SOLVER.NFORMER.EVAL_PERIOD", "4"])]


def _slug(name):
    return "".join(c if c.isalnum() else "_" for c in name.split(":")[0].split("=")[0]).strip("_")


def _cell(res, key=None):
    r = res if key is None else res.get(key)
    return "" if not r else f"{r['Rank-1']:.1f} / {r['mAP']:.1f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--logs", default="logs/combined/ablation")
    p.add_argument("--out", help="also write the table to this Markdown file")
    p.add_argument("--no-diagnosis", action="store_true", help="leave out the diagnosis rows")
    p.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE for every row")
    args = p.parse_args(argv)
    lines, full = [], None

    def stage1_row(i, name, opts):
        out = os.path.join(args.logs, f"{i}_{_slug(name)}")
        res = train(STAGE1, opts + args.opts + ["OUTPUT_DIR", out])["SynthPerson"]
        hashing = {k: v for k, v in res.items() if isinstance(v, dict) and k.startswith("hash")}
        lines.append([name, _cell(res), _cell(res, "LBR"),
                      " ; ".join(f"{k}: {_cell(v)}" for k, v in hashing.items()), ""])
        print(lines[-1], flush=True)
        return out

    def stage2_row(name, stage1_out, opts, out_name):
        res = train(STAGE2, opts + args.opts + [
            "MODEL.NFORMER.STAGE1_WEIGHTS", os.path.join(stage1_out, "model_final.pth"),
            "OUTPUT_DIR", os.path.join(args.logs, out_name)])["SynthPerson"]
        lines.append([name, _cell(res), _cell(res, "LBR"), "", _cell(res, "NFormer")])
        print(lines[-1], flush=True)

    for i, (name, opts) in enumerate(ROWS):
        full = stage1_row(i, name, opts)
    stage2_row("+ NFormer (stage 2, test time)", full, [], "nformer_stage2")
    for i, (name, opts) in enumerate(LEAVE_ONE_OUT, len(ROWS)):
        out = stage1_row(i, name, opts)
        stage2_row(f"{name}, + NFormer (stage 2)", out, opts, f"nformer_stage2_{i}")
    if not args.no_diagnosis:
        for i, (name, opts) in enumerate(DIAGNOSIS, len(ROWS) + len(LEAVE_ONE_OUT)):
            stage1_row(i, name, opts)
        for j, (name, opts) in enumerate(STAGE2_DIAGNOSIS):
            stage2_row(name, full, opts, f"nformer_stage2_diag{j}")
    table = markdown(["row", "plain cosine R1 / mAP", "+ LBR R1 / mAP",
                      "SSR codes: Hamming, AFR R1 / mAP", "+ NFormer R1 / mAP"], lines)
    print_table(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
