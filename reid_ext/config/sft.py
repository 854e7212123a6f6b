"""Config keys of SFT (training head) and LBR (test-time re-ranking).

Luo et al., "Spectral Feature Transformation for Person Re-identification", ICCV 2019.
See projects/SFT/ for the configs using them.
"""
from .keys import add_key


def add_sft_config(cfg):
    # SFT acts only with MODEL.HEADS.NAME: SFTHead (reid_ext.modeling.heads.SFTHead)
    add_key(cfg, "MODEL.HEADS.SFT.ENABLED", True)  # SFTHead applies SFT in training; False = plain EmbeddingHead
    add_key(cfg, "MODEL.HEADS.SFT.SIGMA", 0.1)  # softmax temperature over cosine similarities (official 0.1)
    add_key(cfg, "MODEL.HEADS.SFT.DEEP_SUP", True)  # losses on both X and SFT(X) (averaged views); False = SFT(X) only
    add_key(cfg, "MODEL.HEADS.SFT.METRIC_VIEWS", "original")  # with DEEP_SUP: metric losses (triplet, AdaSP...) on X only (official), or "all" views
    add_key(cfg, "TEST.LBR.ENABLED", False)  # report Local Blurring Re-ranking ("LBR") beside the plain result
    add_key(cfg, "TEST.LBR.TOPN", 50)  # gallery items re-ordered per query (official: 50; MSMT17 150)
    add_key(cfg, "TEST.LBR.TAU", 0.1)  # temperature of the blurring affinity (official: 0.1; MSMT17 0.02)
    add_key(cfg, "TEST.LBR.GRID_TOPN", [])  # with GRID_TAU: also report "LBR n=.. tau=.." for each pair
    add_key(cfg, "TEST.LBR.GRID_TAU", [])  # tau values of that grid (to choose n and tau on a validation set)
    # fastreid's k-reciprocal re-ranking beside the plain result (TEST.RERANK replaces it)
    add_key(cfg, "TEST.KRECIP.ENABLED", False)  # report "k-reciprocal" with TEST.RERANK.{K1,K2,LAMBDA}
    add_key(cfg, "TEST.KRECIP.GRID_K1", [])  # with GRID_K2 and GRID_LAMBDA: one entry per combination
    add_key(cfg, "TEST.KRECIP.GRID_K2", [])  # k2 values of that grid (no grid while any GRID list is empty)
    add_key(cfg, "TEST.KRECIP.GRID_LAMBDA", [])  # lambda values of that grid
    return cfg
