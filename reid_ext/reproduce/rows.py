"""The published results of the five papers, each tied to the config that reproduces it.

A row names where its value comes from (``source``) and how sure that is (``confidence``,
from ``../shared/specs``: C2F and SSR publish no number, so they have none here; their
configs are still checked by the dry run, see ``UNPUBLISHED``).

``test_set`` / ``variant`` / ``metric`` locate our value in the evaluation results
(``results.json``: ``{test set: {metric, variant: {metric}}}``; ``variant`` None = the plain
ranking). ``requires`` lists configs to train first (NFormer's stage 1).
"""
import re
from dataclasses import dataclass
from typing import Optional, Tuple


@dataclass(frozen=True)
class Row:
    paper: str
    dataset: str
    variant: str
    metric: str  # "mAP" or "Rank-1"
    published: float
    config: str
    test_set: str
    result_variant: Optional[str] = None
    requires: Tuple[str, ...] = ()
    source: str = "paper"
    confidence: str = "unverified"
    note: str = ""

    @property
    def id(self):
        slug = f"{self.paper}/{self.dataset}/{self.variant}/{self.metric}".lower()
        return re.sub(r"[^a-z0-9/]+", "-", slug).strip("-").replace("-/", "/")


_ADASP_README = ("official README (metric loss only)", "confirmed")
_ADASP_NOTE = "README's Market/Duke columns may be swapped (Market below Duke is atypical for MGN)"
_ADASP_TABLE = {  # loss type -> (MSMT17 mAP, Market mAP, Duke mAP, VeRi mAP, VID-S R1, VID-M R1)
    "sp-h": (61.0, 80.5, 87.5, 75.3, 85.6, 80.0),
    "sp-lh": (58.4, 77.0, 83.8, 77.2, 87.0, 81.9),
    "adasp": (60.7, 80.1, 86.8, 77.6, 86.4, 81.8),
}
_ADASP_COLUMNS = (  # (dataset, metric, config folder and prefix, test set)
    ("MSMT17", "mAP", "MSMT17/mgn_single", "MSMT17"),
    ("Market1501", "mAP", "Market1501/mgn_single", "Market1501"),
    ("DukeMTMC", "mAP", "DukeMTMC/mgn_single", "DukeMTMC"),
    ("VeRi", "mAP", "VeRi/norm_single", "VeRi"),
    ("VehicleID-small", "Rank-1", "VehicleID/norm_single", "SmallVehicleID"),
    ("VehicleID-medium", "Rank-1", "VehicleID/norm_single", "MediumVehicleID"),
)


def _adasp_rows():
    rows = []
    for loss, values in _ADASP_TABLE.items():
        for (dataset, metric, prefix, test_set), value in zip(_ADASP_COLUMNS, values):
            rows.append(Row(
                "AdaSP", dataset, {"adasp": "AdaSP", "sp-h": "SP-H", "sp-lh": "SP-LH"}[loss],
                metric, value, f"projects/AdaSP/configs/{prefix}_{loss}.yml", test_set,
                source=_ADASP_README[0], confidence=_ADASP_README[1],
                note=_ADASP_NOTE if dataset in ("Market1501", "DukeMTMC") else ""))
    return rows


def _sft_rows():
    rows = []
    paper = {"Market1501": (93.4, 82.7), "DukeMTMC": (86.3, 73.2)}
    for dataset, (r1, m) in paper.items():
        cfg = f"projects/SFT/configs/{dataset.lower()}.yml"
        for metric, value in (("Rank-1", r1), ("mAP", m)):
            rows.append(Row("SFT", dataset, "SFT", metric, value, cfg, dataset))
    log = ("CoinCheung/SFT-ReID training log", "third-party reproduction")
    for variant, cfg, result_variant, (r1, m) in (
            ("baseline", "market1501_baseline", None, (92.96, 82.57)),
            ("SFT (repro)", "market1501", None, (93.20, 82.98)),
            ("SFT+LBR (repro)", "market1501", "LBR", (93.26, 87.28))):
        for metric, value in (("Rank-1", r1), ("mAP", m)):
            rows.append(Row("SFT", "Market1501", variant, metric, value,
                            f"projects/SFT/configs/{cfg}.yml", "Market1501", result_variant,
                            source=log[0], confidence=log[1]))
    return rows


def _nformer_rows():
    rows = []
    published = {"Market1501": (94.7, 91.1), "DukeMTMC": (89.4, 83.5), "MSMT17": (77.3, 59.8)}
    for dataset, (r1, m) in published.items():
        folder = f"projects/NFormer/configs/{dataset}"
        for metric, value, conf in (("Rank-1", r1, "confirmed (benchmark listing)"),
                                    ("mAP", m, "unverified")):
            rows.append(Row("NFormer", dataset, "NFormer", metric, value, f"{folder}/stage2.yml",
                            dataset, "NFormer", requires=(f"{folder}/stage1.yml",),
                            source="paper (via a public benchmark listing)", confidence=conf))
    return rows


ROWS = tuple(_adasp_rows() + _sft_rows() + _nformer_rows())

# Papers without a public number: their configs are built by the dry run and can be run
# with --config; there is nothing to compare against.
UNPUBLISHED = {
    "C2F": ("projects/C2F/configs/veri_c2f.yml", "projects/C2F/configs/veriwild_c2f.yml"),
    "SSR": ("projects/SSR/configs/market1501_2048bits.yml",
            "projects/SSR/configs/dukemtmc_2048bits.yml"),
}
