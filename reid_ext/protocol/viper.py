"""The VIPeR protocol: its variants and the pages its table goes to.

Every variant is a config of ``projects/VIPeR/configs`` (one ``_BASE_``), trained and
evaluated on splits of ``reid_ext/data/splits/viper.json``; results files go to
``docs/benchmarks/viper/<variant>/split<k>.json``. Adding a variant = one config file and
one :class:`~reid_ext.protocol.runner.Variant` line below (plus a row of a table).
"""
import os

from .report import (markdown, paired_rows, per_split_rows, replace_block, select_on_validation,
                     summary_rows)
from .runner import Protocol, Variant, resolve

CFG = "projects/VIPeR/configs"
ALL, FIVE, THREE = tuple(range(10)), tuple(range(5)), tuple(range(3))

# Test-time grids, reported by one evaluation: LBR (spec n 50, tau 0.1 = the "LBR" entry)
# and fastreid's k-reciprocal (k1 20, k2 6, lambda 0.3 = the "k-reciprocal" entry). The
# value used per split is the one that scores best on that split's validation run.
LBR_TOPN, LBR_TAU = (5, 10, 20, 50), (0.02, 0.05, 0.1, 0.3)
KR_K1, KR_K2, KR_LAMBDA = (5, 10, 20), (2, 3, 6), (0.1, 0.3, 0.6)


def _list(values):
    return "[" + ", ".join(map(str, values)) + "]"


RERANK = ("TEST.LBR.ENABLED", "True", "TEST.LBR.GRID_TOPN", _list(LBR_TOPN),
          "TEST.LBR.GRID_TAU", _list(LBR_TAU), "TEST.KRECIP.ENABLED", "True",
          "TEST.KRECIP.GRID_K1", _list(KR_K1), "TEST.KRECIP.GRID_K2", _list(KR_K2),
          "TEST.KRECIP.GRID_LAMBDA", _list(KR_LAMBDA))
VALIDATION = ("DATASETS.VIPER.VALIDATION", "True") + RERANK
NO_C2F = ("MODEL.BACKBONE.ATTENTION.TYPE", "none")
FULL_ATTENTION = ("MODEL.BACKBONE.ATTENTION.TYPE", "full")
WITH_C2F = ("MODEL.BACKBONE.ATTENTION.TYPE", "c2f")  # combined.yml has C2F off (evidence)
LBR_SPEC = ("TEST.LBR.ENABLED", "True")  # LBR at the spec's n, tau reported beside (off in combined.yml)

VARIANTS = [
    Variant("baseline", "Baseline: CE + triplet (soft margin, batch-hard)", f"{CFG}/baseline.yml",
            splits=ALL),
    # the baseline with AdaSP in the triplet's place (pooled feature): only the loss changes
    Variant("ce_adasp_before", "CE + AdaSP × 0.5 on the pooled feature",
            f"{CFG}/ce_adasp.yml", opts=("MODEL.HEADS.NECK_FEAT", "before"), splits=ALL,
            baseline="baseline"),
    Variant("ce_adasp", "CE + AdaSP × 0.5, official (BN-neck feature)", f"{CFG}/ce_adasp.yml",
            splits=FIVE, baseline="baseline"),
    Variant("ce_sp-h", "CE + SP-H × 0.5", f"{CFG}/ce_sp-h.yml", splits=FIVE, baseline="baseline"),
    Variant("ce_sp-lh", "CE + SP-LH × 0.5", f"{CFG}/ce_sp-lh.yml", splits=FIVE,
            baseline="baseline"),
    Variant("adasp", "AdaSP alone", f"{CFG}/adasp.yml", splits=FIVE, baseline="triplet"),
    Variant("sp-h", "SP-H alone", f"{CFG}/sp-h.yml", splits=FIVE, baseline="triplet"),
    Variant("sp-lh", "SP-LH alone", f"{CFG}/sp-lh.yml", splits=FIVE, baseline="triplet"),
    Variant("triplet", "Triplet alone (soft margin, batch-hard)", f"{CFG}/triplet.yml",
            splits=FIVE, baseline="baseline"),
    # ablations isolating why CE + AdaSP falls below the baseline (projects/VIPeR/README.md)
    Variant("ce", "Ablation: CE alone", f"{CFG}/ce.yml", splits=THREE, baseline="baseline"),
    Variant("ce_adasp_w01", "Ablation: CE + AdaSP × 0.1", f"{CFG}/ce_adasp_w01.yml",
            splits=THREE, baseline="baseline"),
    Variant("ce_adasp_w1", "Ablation: CE + AdaSP × 1.0", f"{CFG}/ce_adasp_w1.yml",
            splits=THREE, baseline="baseline"),
    Variant("ce_triplet_after", "Ablation: CE + triplet on the BN-neck feature",
            f"{CFG}/ce_triplet_after.yml", splits=THREE, baseline="baseline"),
]

# Issue 13: the other methods on the same base (projects/VIPeR/README.md)
OTHER_VARIANTS = [
    Variant("baseline_val", "Validation: baseline on halves of the training identities",
            f"{CFG}/baseline.yml", opts=VALIDATION, splits=FIVE),
    Variant("baseline_rerank", "Baseline, re-ranked (eval of its checkpoint)",
            f"{CFG}/baseline.yml", opts=("MODEL.WEIGHTS", "{weights}") + RERANK, splits=FIVE,
            weights_from="baseline", eval_only=True),
    Variant("sft", "SFT (σ 0.1, deep supervision)", f"{CFG}/sft.yml", splits=FIVE,
            baseline="baseline"),
    Variant("sft_val", "Validation: SFT on halves of the training identities",
            f"{CFG}/sft.yml", opts=VALIDATION, splits=FIVE),
    Variant("sft_rerank", "SFT, re-ranked (eval of its checkpoint)", f"{CFG}/sft.yml",
            opts=("MODEL.WEIGHTS", "{weights}") + RERANK, splits=FIVE, weights_from="sft",
            eval_only=True),
    Variant("nformer", "Baseline + NFormer (stage 2 on the frozen encoder)",
            f"{CFG}/nformer.yml", opts=("MODEL.NFORMER.STAGE1_WEIGHTS", "{weights}"),
            splits=FIVE, weights_from="baseline"),
    # diagnosis: the NFormer without neighbours (TOPK 1: each token attends to itself, so
    # only the learned projection and the re-trained head remain) and with 5 neighbours
    *[Variant(f"nformer_topk{k}", f"Diagnosis: Baseline + NFormer, TOPK {k}",
              f"{CFG}/nformer.yml", opts=("MODEL.NFORMER.STAGE1_WEIGHTS", "{weights}",
                                          "MODEL.NFORMER.TOPK", str(k)),
              splits=THREE, weights_from="baseline") for k in (1, 5)],
    *[Variant(f"ssr_{b}", f"SSR hashing, {b} bits", f"{CFG}/ssr_{b}bits.yml", splits=FIVE)
      for b in (64, 128, 512, 2048)],
    Variant("ssr_128_off", "SSR hashing, 128 bits, SSR term off", f"{CFG}/ssr_128bits_off.yml",
            splits=FIVE),
    # the SSR term is a per-bit mean: at weight 1 its push on each logit is 1/BITS of a
    # per-bit sum's; x BITS makes it that sum (the spec leaves mean or sum open)
    Variant("ssr_128_x128", "Diagnosis: SSR 128 bits, SSR term x 128 (per-bit sum)",
            f"{CFG}/ssr_128bits.yml", opts=("MODEL.HASH.SSR_WEIGHT", "128.0"), splits=(0,)),
    # diagnosis of 2048 < 512 bits: without the identity CE (its classifier reads the code),
    # does the longer code still lose?
    *[Variant(f"ssr_{b}_noce", f"Diagnosis: SSR {b} bits without the CE (triplet + SSR term)",
              f"{CFG}/ssr_{b}bits.yml", opts=("MODEL.HASH.CE_WEIGHT", "0.0"), splits=(0, 1))
      for b in (512, 2048)],
    Variant("combined", "Combined (C2F + AdaSP + SSR branch; SFT off at K = 2)",
            f"{CFG}/combined.yml",
            opts=WITH_C2F + RERANK, splits=FIVE, baseline="baseline"),
    Variant("combined_nformer", "Combined, stage 2 (+ NFormer)", f"{CFG}/combined_stage2.yml",
            opts=WITH_C2F + LBR_SPEC + ("MODEL.NFORMER.STAGE1_WEIGHTS", "{weights}"), splits=FIVE,
            weights_from="combined"),
    Variant("combined_noc2f", "Combined without C2F", f"{CFG}/combined.yml",
            opts=NO_C2F + RERANK, splits=FIVE, baseline="baseline"),
    Variant("combined_noc2f_nformer", "Combined without C2F, stage 2 (+ NFormer)",
            f"{CFG}/combined_stage2.yml",
            opts=NO_C2F + LBR_SPEC + ("MODEL.NFORMER.STAGE1_WEIGHTS", "{weights}"),
            splits=FIVE,
            weights_from="combined_noc2f"),
    # diagnosis of C2F's drop in the Combined model: dense attention in the same places
    # (sparse vs any attention block), and the C2F blocks on the baseline alone
    Variant("combined_full", "Diagnosis: Combined with full attention in C2F's places",
            f"{CFG}/combined.yml", opts=FULL_ATTENTION + LBR_SPEC, splits=THREE, baseline="baseline"),
    Variant("c2f", "Diagnosis: Baseline + the Combined model's C2F blocks", f"{CFG}/c2f.yml",
            splits=THREE, baseline="baseline"),
]

# paired comparisons beyond each variant's own baseline: the paper's ordering of the
# three AdaSP types, and the two ablations against what they change
EXTRA_PAIRS = [("adasp", "sp-h"), ("adasp", "sp-lh"), ("sp-h", "sp-lh"),
               ("ce_adasp_w01", "ce"), ("ce_adasp", "ce_adasp_w01"), ("ce_adasp_w1", "ce_adasp"),
               ("adasp", "baseline"), ("ce_adasp_before", "ce_adasp")]

# --- issue 13: rows of the other methods (label, run, result variant). "<run>@<grid>" is
# the grid entry chosen on validation (select_on_validation), see _with_selections.
SELECTIONS = [("baseline_rerank", "baseline_val"), ("sft_rerank", "sft_val"),
              ("combined", "baseline_val"), ("combined_noc2f", "baseline_val")]
SSR_BITS = (64, 128, 512, 2048)
METHOD_ROWS = {
    "SFT + LBR": [
        ("Baseline (plain cosine)", "baseline", ""),
        ("Baseline + LBR, spec n 50, τ 0.1", "baseline_rerank", "LBR"),
        ("Baseline + LBR, n, τ chosen on validation", "baseline_rerank@LBR", ""),
        ("Baseline + k-reciprocal, fastreid k1 20, k2 6, λ 0.3", "baseline_rerank", "k-reciprocal"),
        ("Baseline + k-reciprocal, chosen on validation", "baseline_rerank@k-reciprocal", ""),
        ("SFT (σ 0.1, deep supervision)", "sft", ""),
        ("SFT + LBR, spec n 50, τ 0.1", "sft_rerank", "LBR"),
        ("SFT + LBR, n, τ chosen on validation", "sft_rerank@LBR", ""),
        ("SFT + k-reciprocal, fastreid k1 20, k2 6, λ 0.3", "sft_rerank", "k-reciprocal"),
        ("SFT + k-reciprocal, chosen on validation", "sft_rerank@k-reciprocal", "")],
    "NFormer": [("Baseline + NFormer (stage 2, frozen encoder)", "nformer", "NFormer"),
                ("Diagnosis: NFormer with TOPK 1 (no neighbours)", "nformer_topk1", "NFormer"),
                ("Diagnosis: NFormer with TOPK 5", "nformer_topk5", "NFormer")],
    "SSR": [row for b in SSR_BITS for row in (
        (f"SSR {b} bits: float ranking (tanh code)", f"ssr_{b}", ""),
        (f"SSR {b} bits: Hamming ranking of the codes", f"ssr_{b}", f"hash{b}"))] + [
        ("SSR 128 bits, SSR term off: float ranking", "ssr_128_off", ""),
        ("SSR 128 bits, SSR term off: Hamming ranking", "ssr_128_off", "hash128"),
        ("Diagnosis: SSR 128 bits, SSR term × 128: float ranking", "ssr_128_x128", ""),
        ("Diagnosis: SSR 128 bits, SSR term × 128: Hamming ranking", "ssr_128_x128", "hash128")] + [
        (f"Diagnosis: SSR {b} bits without the CE: float ranking", f"ssr_{b}_noce", "")
        for b in (512, 2048)],
    "Combined": [row for name, text in (("combined", "Combined"),
                                        ("combined_noc2f", "Combined without C2F"))
                 for row in ((f"{text}: plain cosine", name, ""),
                             (f"{text} + LBR (n, τ of the baseline's validation)",
                              f"{name}@LBR", ""),
                             (f"{text}: Hamming ranking, 512 bits", name, "hash512"),
                             (f"{text} + NFormer (stage 2)", f"{name}_nformer", "NFormer"))] + [
        ("Diagnosis: Combined with full attention in C2F's places: plain cosine",
         "combined_full", ""),
        ("Diagnosis: Baseline + the Combined model's C2F blocks", "c2f", "")],
}
# projects/C2F/README.md's block: the Combined rows with and without attention blocks
C2F_ROWS = [("Combined without C2F (no attention block)", "combined_noc2f", ""),
            ("Combined with C2F", "combined", ""),
            ("Diagnosis: Combined with full attention in C2F's places", "combined_full", ""),
            ("Diagnosis: Baseline + the Combined model's C2F blocks", "c2f", "")]
C2F_PAIRS = [("Combined − Combined without C2F", ("combined", ""), ("combined_noc2f", "")),
             ("Combined with full attention − Combined without C2F", ("combined_full", ""),
              ("combined_noc2f", "")),
             ("Combined − Combined with full attention", ("combined", ""),
              ("combined_full", ""))]
OTHER_PAIRS = [  # (label, (run, result variant), (run, result variant)) beyond "− Baseline"
    ("SFT − Baseline", ("sft", ""), ("baseline", "")),
    ("SFT + LBR (validated) − SFT", ("sft_rerank@LBR", ""), ("sft", "")),
    ("Baseline + LBR (validated) − Baseline + LBR (spec)", ("baseline_rerank@LBR", ""),
     ("baseline_rerank", "LBR")),
    ("Baseline + LBR (validated) − Baseline + k-reciprocal (validated)",
     ("baseline_rerank@LBR", ""), ("baseline_rerank@k-reciprocal", "")),
    *[(f"SSR {b}: Hamming − float", (f"ssr_{b}", f"hash{b}"), (f"ssr_{b}", ""))
      for b in SSR_BITS],
    ("NFormer TOPK 20 − TOPK 1 (what the neighbours add)", ("nformer", "NFormer"),
     ("nformer_topk1", "NFormer")),
    ("NFormer TOPK 5 − TOPK 1", ("nformer_topk5", "NFormer"), ("nformer_topk1", "NFormer")),
    ("SSR 2048 − 512 bits: float", ("ssr_2048", ""), ("ssr_512", "")),
    ("SSR 2048 − 512 bits without the CE: float", ("ssr_2048_noce", ""), ("ssr_512_noce", "")),
    ("SSR 512 bits without − with the CE: float", ("ssr_512_noce", ""), ("ssr_512", "")),
    ("SSR 2048 bits without − with the CE: float", ("ssr_2048_noce", ""), ("ssr_2048", "")),
    ("SSR 128 on − off: Hamming", ("ssr_128", "hash128"), ("ssr_128_off", "hash128")),
    ("SSR 128 on − off: float", ("ssr_128", ""), ("ssr_128_off", "")),
    ("SSR 128 term × 128 − × 1: Hamming", ("ssr_128_x128", "hash128"), ("ssr_128", "hash128")),
    ("SSR 128 term × 128 − × 1: float", ("ssr_128_x128", ""), ("ssr_128", "")),
    *C2F_PAIRS,
    ("Combined + NFormer − Combined", ("combined_nformer", "NFormer"), ("combined", "")),
    ("Combined w/o C2F + NFormer − Combined w/o C2F", ("combined_noc2f_nformer", "NFormer"),
     ("combined_noc2f", "")),
    ("Combined + LBR − Combined", ("combined@LBR", ""), ("combined", "")),
]

PROTOCOL = Protocol(
    name="viper", variants=VARIANTS + OTHER_VARIANTS, results_dir="docs/benchmarks/viper",
    logs_dir="logs/protocol/viper", test_set="VIPeRSplit",
    split_opts=lambda s: ["DATASETS.VIPER.SPLIT", str(s), "SEED", str(s)], num_splits=10)

COMMAND = ("FASTREID_DATASETS=../shared/data python -m reid_ext.protocol viper "
           "--jobs 2 --threads 1")
PAGE = "docs/benchmarks/viper.md"


def _row(v):
    return (v.label, v.name, "")


def pairwise_tables(found, variants):
    """The AdaSP family: summary, paired differences, per-split Rank-1."""
    rows = [_row(v) for v in variants]
    header = ["variant", "splits", *("Rank-1", "Rank-5", "Rank-10", "Rank-20", "mAP"),
              "CPU min/run"]
    out = [markdown(header, summary_rows(PROTOCOL, found, rows))]
    names = {v.name for v in variants}
    pairs = [(v.name, v.baseline) for v in variants if v.baseline]
    pairs += [(a, b) for a, b in EXTRA_PAIRS if a in names and b in names]
    pairs = [(f"{_short(a)} − {_short(b)}", (a, ""), (b, "")) for a, b in pairs]
    out.append("Paired differences (same splits; mean ± std over the splits, and on how many "
               "the variant is better):\n")
    out.append(markdown(["difference", "splits", "Rank-1", "Rank-20", "mAP"],
                        paired_rows(PROTOCOL, found, pairs)))
    for metric in ("Rank-1", "Rank-20", "mAP"):
        splits, lines = per_split_rows(found, rows, metric)
        out.append(f"{metric} per split:\n")
        out.append(markdown(["variant", *[f"split {s}" for s in splits]], lines))
    return "\n".join(out)


def _with_selections(found):
    """found plus "<run>@LBR" / "<run>@k-reciprocal": per split the grid entry that scores
    best (mAP) on the split's validation run, read on the test run."""
    out = dict(found)
    for test, val in SELECTIONS:
        for prefix in ("LBR", "k-reciprocal"):
            out[f"{test}@{prefix}"] = select_on_validation(found, test, val, prefix)
    return out


def _timing_lines(found):
    """Seconds of one re-ranking of the 316 x 316 test set (mean over splits)."""
    lines = []
    for label, name, rv in METHOD_ROWS["SFT + LBR"][1:5]:
        runs = found.get(name, {})
        secs = [(r["variants"].get(rv, {}) if rv else r["metrics"]).get("seconds")
                for r in runs.values()]
        secs = [x for x in secs if x is not None]
        lines.append([label, str(len(secs)), f"{1000 * sum(secs) / len(secs):.0f}" if secs else "–"])
    return lines


def _chosen_lines(found):
    lines = []
    for test, _ in SELECTIONS[:2]:
        for prefix in ("LBR", "k-reciprocal"):
            runs = found.get(f"{test}@{prefix}", {})
            lines.append([f"{test.split('_')[0]} {prefix}"] + [
                runs[s]["chosen"][len(prefix) + 1:] if s in runs else "" for s in range(5)])
    return lines


def other_tables(found):
    """The other methods on the baseline's base (issue 13): summary, paired differences to
    the baseline and between related rows, per-split Rank-1, chosen parameters, times."""
    f = _with_selections(found)
    rows = [r for group in METHOD_ROWS.values() for r in group]
    header = ["variant", "splits", *("Rank-1", "Rank-5", "Rank-10", "Rank-20", "mAP"),
              "CPU min/run"]
    out = [markdown(header, summary_rows(PROTOCOL, f, rows))]
    pairs = [(f"{label} − Baseline", (name, rv), ("baseline", "")) for label, name, rv in rows[1:]]
    out.append("Paired differences to the baseline (same splits; mean ± std over the splits, "
               "and on how many the row is better):\n")
    out.append(markdown(["difference", "splits", "Rank-1", "Rank-20", "mAP"],
                        paired_rows(PROTOCOL, f, pairs)))
    out.append("Paired differences between related rows:\n")
    out.append(markdown(["difference", "splits", "Rank-1", "Rank-20", "mAP"],
                        paired_rows(PROTOCOL, f, OTHER_PAIRS)))
    for metric in ("Rank-1", "mAP"):
        splits, lines = per_split_rows(f, rows, metric)
        out.append(f"{metric} per split:\n")
        out.append(markdown(["variant", *[f"split {s}" for s in splits]], lines))
    out.append("Re-ranking parameters chosen on each split's validation run (best mAP on the "
               "held-out half of the training identities; test identities never seen):\n")
    out.append(markdown(["model, re-ranking", *[f"split {s}" for s in range(5)]],
                        _chosen_lines(f)))
    out.append("Time of one re-ranking of the 316 × 316 test set (baseline features, "
               "query-gallery product included; mean over the splits, on the machine above):\n")
    out.append(markdown(["re-ranking", "splits", "ms"], _timing_lines(f)))
    return "\n".join(out)


def method_rows_table(found, group, extra_pairs=()):
    """Summary + paired difference to the baseline of one method's rows (README block);
    group: a METHOD_ROWS key or a list of rows."""
    f = _with_selections(found)
    group_rows = METHOD_ROWS[group] if isinstance(group, str) else group
    rows = [METHOD_ROWS["SFT + LBR"][0]] + [r for r in group_rows if r[1] != "baseline"]
    header = ["variant", "splits", *("Rank-1", "Rank-5", "Rank-10", "Rank-20", "mAP"),
              "CPU min/run"]
    pairs = [(f"{label} − Baseline", (name, rv), ("baseline", "")) for label, name, rv in rows[1:]]
    return (markdown(header, summary_rows(PROTOCOL, f, rows)) + "\n" +
            markdown(["difference", "splits", "Rank-1", "Rank-20", "mAP"],
                     paired_rows(PROTOCOL, f, pairs + list(extra_pairs))))


def _short(name):
    return PROTOCOL.variant(name).label.split(":")[-1].split("(")[0].strip()


def write_pages(found, stale, machine_text, extra_sections=()):
    """docs/benchmarks/viper.md (whole page), the VIPeR block of BENCHMARKS.md and of
    projects/AdaSP/README.md."""
    pairwise = [v for v in VARIANTS]
    table = pairwise_tables(found, pairwise)
    intro = open(resolve("projects/VIPeR/TABLE_INTRO.md")).read().rstrip()
    page = [f"# VIPeR: the standard 10-split protocol\n\n{intro}\n",
            f"Machine: {machine_text}.\n\nReproduce (reuses the results files below, runs "
            f"what is missing): `{COMMAND}`\n(`python -m reid_ext.protocol viper --report` "
            f"only rewrites the tables from the files.)\n",
            "## Baseline and the pairwise losses of AdaSP\n", table]
    page += ["## The other methods on the same base\n", other_tables(found)]
    page += list(extra_sections)
    pictures = resolve("projects/VIPeR/PICTURES.md")
    if os.path.exists(pictures):
        page.append(open(pictures).read().rstrip() + "\n")
    page.append("## Where the numbers come from\n\nOne results file per run: "
                "`docs/benchmarks/viper/<variant>/split<k>.json` (metrics, config hash, split, "
                "CPU and wall seconds, machine).")
    if stale:
        page.append("\nStale results files (another config; not counted): "
                    + ", ".join(f"`{os.path.relpath(p, resolve('.'))}`" for p in stale))
    with open(resolve(PAGE), "w") as f:
        f.write("\n".join(page).rstrip() + "\n")
    short = table.split("Rank-1 per split:")[0].rstrip()
    replace_block(resolve("BENCHMARKS.md"), "viper",
                  f"## VIPeR (real images, 10-split protocol)\n\n{short}\n\n"
                  f"Per-split numbers, CPU time and the reading: [{PAGE}]({PAGE}). "
                  f"Command: `{COMMAND}`.")
    for group, readme, extra in (("SFT + LBR", "SFT", ()), ("NFormer", "NFormer", ()),
                                 ("SSR", "SSR", ()), ("Combined", "Combined", ()),
                                 (C2F_ROWS, "C2F", C2F_PAIRS)):
        replace_block(resolve(f"projects/{readme}/README.md"), "viper",
                      f"## On VIPeR (real images)\n\n{method_rows_table(found, group, extra)}\n"
                      f"Per-split numbers, the recipe and the reading: [../../{PAGE}]"
                      f"(../../{PAGE}) and [projects/VIPeR](../VIPeR/README.md); command: "
                      f"`{COMMAND}`.")
    replace_block(resolve("projects/AdaSP/README.md"), "viper",
                  f"## On VIPeR (real images)\n\n{short}\n\nPer-split numbers, the recipe and "
                  f"the reading: [../../{PAGE}](../../{PAGE}); configs in "
                  f"[projects/VIPeR](../VIPeR).")
    return resolve(PAGE)
