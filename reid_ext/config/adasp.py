"""Config keys of the AdaSP loss (issue 3; see projects/AdaSP/ for the configs).

Key names are the official repository's (Astaxanthin/AdaSP), so its configs port over.
"""
from .keys import add_key


def add_adasp_config(cfg):
    add_key(cfg, "MODEL.LOSSES.ADASP.SCALE", 1.0)  # loss_adasp multiplier (ReidMGN: x0.2 per feature)
    add_key(cfg, "MODEL.LOSSES.ADASP.TEMP", 0.05)  # temperature tau (person recipes: 0.04)
    add_key(cfg, "MODEL.LOSSES.ADASP.TYPE", "adasp")  # "adasp", "sp-h" or "sp-lh"
    add_key(cfg, "MODEL.HEADS.CLS_ENABLE", True)  # False: no classifier (ReidEmbeddingHead)
    return cfg
