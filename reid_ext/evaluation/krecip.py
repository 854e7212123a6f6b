"""fastreid's k-reciprocal re-ranking reported *beside* the plain result.

``TEST.RERANK.ENABLED`` (fastreid's key) replaces the plain result by the re-ranked one;
``TEST.KRECIP.ENABLED`` keeps the plain result and adds ``"k-reciprocal"`` (with
``TEST.RERANK.{K1,K2,LAMBDA}``), so a re-ranking can be compared with the plain ranking
and with LBR in one evaluation. ``TEST.KRECIP.GRID_{K1,K2,LAMBDA}`` add one entry per
combination, ``"k-reciprocal k1=.. k2=.. lambda=.."``, for choosing the parameters on a
validation set (e.g. ``DATASETS.VIPER.VALIDATION``). Each entry reports ``seconds``: the
whole re-ranking, the query-gallery product included.
"""
from .evaluator import k_reciprocal_distance
from .variants import EVAL_VARIANTS, VariantOutput, grid, timed


@EVAL_VARIANTS.register()
def k_reciprocal_variant(cfg, query, gallery, model=None):
    node = cfg.TEST.get("KRECIP")
    if node is None or not node.ENABLED:
        return {}
    r = cfg.TEST.RERANK
    params = [("k-reciprocal", (r.K1, r.K2, r.LAMBDA))]
    params += [(f"k-reciprocal k1={k1} k2={k2} lambda={lam:g}", (k1, k2, lam))
               for k1, k2, lam in grid(node.GRID_K1, node.GRID_K2, node.GRID_LAMBDA)]
    out = {}
    for name, (k1, k2, lam) in params:
        dist, sec = timed(k_reciprocal_distance, query.feats, gallery.feats, int(k1), int(k2),
                          float(lam), cfg.TEST.METRIC)
        out[name] = VariantOutput(dist=dist, metrics={"seconds": sec})
    return out
