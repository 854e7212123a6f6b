"""``ReidExtEvaluator``: fastreid's ReidEvaluator, made to run anywhere.

- no Cython build at run time and no ``sys.exit`` (ranks with :mod:`.rank`);
- ``TEST.RERANK`` runs on CPU (faiss flat index), on any machine;
- the model may return a Tensor (features) or a dict with ``features`` and extra
  outputs (hash codes, attribute logits...), which variants can use;
- the registered variants (:mod:`.variants`) are reported beside the plain result.
"""
import copy
import itertools
import logging
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F
from fastreid.evaluation.evaluator import DatasetEvaluator
from fastreid.evaluation.query_expansion import aqe
from fastreid.utils import comm
from fastreid.utils.compute_dist import build_dist, compute_jaccard_distance

from .rank import evaluate_rank, evaluate_ranking, summarize
from .variants import FeatureSet, registered_variants

logger = logging.getLogger(__name__)


def k_reciprocal_distance(query, gallery, k1=20, k2=6, lambda_value=0.3, metric="cosine"):
    """fastreid's k-reciprocal re-ranking (Jaccard + original distance), CPU search.

    query (Q, D), gallery (G, D) -> (Q, G) numpy distances.
    """
    dist = build_dist(query, gallery, metric)
    if metric == "cosine":
        query, gallery = F.normalize(query, dim=1), F.normalize(gallery, dim=1)
    feats = torch.cat([query, gallery]).float().cpu()
    # search_option=3: faiss CPU flat index; options 0-2 need CUDA and an old faiss-gpu API
    jaccard = compute_jaccard_distance(feats, k1=k1, k2=k2, search_option=3)
    jaccard = jaccard[: query.size(0), query.size(0):]
    return jaccard * (1 - lambda_value) + dist * lambda_value


def expand_queries(cfg, q_feat, g_feat):
    """Query expansion of ``TEST.AQE`` (fastreid's alpha-QE) when enabled, else unchanged:
    (Q, D), (G, D) -> (Q, D), (G, D)."""
    if not cfg.TEST.AQE.ENABLED:
        return q_feat, g_feat
    logger.info("Test with AQE setting")
    return aqe(q_feat, g_feat, cfg.TEST.AQE.QE_TIME, cfg.TEST.AQE.QE_K, cfg.TEST.AQE.ALPHA)


class ReidExtEvaluator(DatasetEvaluator):
    def __init__(self, cfg, num_query, output_dir=None, model=None):
        self.cfg = cfg
        self._num_query = num_query
        self._output_dir = output_dir
        self.model = model
        self._predictions = []

    def reset(self):
        self._predictions = []

    def process(self, inputs, outputs):
        if not isinstance(outputs, dict):
            outputs = {"features": outputs}
        pred = {k: v.detach().to("cpu") for k, v in outputs.items() if isinstance(v, torch.Tensor)}
        pred["features"] = pred["features"].float()
        pred["pids"] = inputs["targets"].cpu()
        pred["camids"] = inputs["camids"].cpu()
        pred["paths"] = list(inputs.get("img_paths", []))
        self._predictions.append(pred)

    def _gathered(self):
        preds = self._predictions
        if comm.get_world_size() > 1:
            comm.synchronize()
            preds = list(itertools.chain(*comm.gather(preds, dst=0)))
            if not comm.is_main_process():
                return None
        keys = [k for k in preds[0] if k != "paths"]
        data = {k: torch.cat([p[k] for p in preds]) for k in keys}
        data["paths"] = list(itertools.chain(*[p["paths"] for p in preds]))
        return data

    def _split(self, data):
        nq = self._num_query
        extras = {k: v for k, v in data.items() if k not in ("features", "pids", "camids", "paths")}

        def part(sl):
            return FeatureSet(data["features"][sl], data["pids"][sl].numpy(),
                              data["camids"][sl].numpy(), {k: v[sl] for k, v in extras.items()},
                              data["paths"][sl] if data["paths"] else [])
        return part(slice(0, nq)), part(slice(nq, None))

    def _metrics(self, query, gallery, dist=None, ranking=None):
        args = (query.pids, gallery.pids, query.camids, gallery.camids)
        if ranking is not None:
            out = evaluate_ranking(ranking, *args)
        else:
            out = evaluate_rank(dist, *args)
        return summarize(*out, ranks=tuple(self.cfg.TEST.get("CMC_RANKS", (1, 5, 10))))

    def evaluate(self):
        data = self._gathered()
        if data is None:
            return {}
        query, gallery = self._split(data)
        cfg = self.cfg
        q_feat, g_feat = expand_queries(cfg, query.feats, gallery.feats)
        t0 = time.perf_counter()
        if cfg.TEST.RERANK.ENABLED:
            logger.info("Test with k-reciprocal re-ranking")
            dist = k_reciprocal_distance(q_feat, g_feat, cfg.TEST.RERANK.K1, cfg.TEST.RERANK.K2,
                                         cfg.TEST.RERANK.LAMBDA, cfg.TEST.METRIC)
        else:
            dist = build_dist(q_feat, g_feat, cfg.TEST.METRIC)
        results = OrderedDict(self._metrics(query, gallery, dist=dist))
        logger.info("plain ranking: %.3f s", time.perf_counter() - t0)

        if cfg.TEST.ROC.ENABLED:
            from fastreid.evaluation.roc import evaluate_roc
            from sklearn import metrics
            scores, labels = evaluate_roc(dist, query.pids, gallery.pids, query.camids,
                                          gallery.camids)
            fprs, tprs, _ = metrics.roc_curve(labels, scores)
            for fpr in (1e-4, 1e-3, 1e-2):
                results["TPR@FPR={:.0e}".format(fpr)] = float(tprs[np.argmin(np.abs(fprs - fpr))])

        # Variants see the AQE-expanded features, like the plain result.
        query = FeatureSet(q_feat, query.pids, query.camids, query.extras, query.paths)
        gallery = FeatureSet(g_feat, gallery.pids, gallery.camids, gallery.extras, gallery.paths)
        for variant in registered_variants():
            for name, out in variant(cfg, query, gallery, self.model).items():
                t0 = time.perf_counter()
                res = OrderedDict()
                if out.dist is not None or out.ranking is not None:
                    res.update(self._metrics(query, gallery, out.dist, out.ranking))
                res.update(out.metrics)
                results[name] = res
                logger.info("variant %s ranked in %.3f s", name, time.perf_counter() - t0)
        return copy.deepcopy(results)
