"""Local Blurring Re-ranking (LBR).

Luo, Chen, Wang, Zhang, "Spectral Feature Transformation for Person
Re-identification", ICCV 2019 (arXiv 1811.11405); official code LuckyDC/sft-reid,
``post_processing/post_clustering.py``. Spec: ``shared/specs/sft-lbr.md`` section 5.

For each query q (all features L2-normalised):
1. s = G q; keep the top-n gallery items G_n (n = ``topn``) by descending s;
2. W = row-normalised exp(G_n G_n^T / tau), diagonal kept; the query is not included;
3. blurred features G_n' = W G_n (one step, no re-normalisation);
4. y = G_n' q re-orders the top-n slots; ranks n+1.. keep their original order.

Step 4 uses ``y = (W G_n) q = W (G_n q) = W s_n``: the blurred features are never
materialised (same value up to float rounding), so the cost per query is the n x n x D
affinity plus the top-n search (which reuses the query-gallery product).

Distances returned by :func:`local_blurring_rerank` (ascending = LBR ranking):
- top-n items: ``(1 - y) - 3``, i.e. the blurred cosine distance shifted into [-3, -1];
- every other item: its plain cosine distance ``1 - cos`` in [0, 2] (the value of
  ``build_dist(..., "cosine")``), so the tail keeps its order behind the top-n.
Ties: at the n-th place the smaller gallery index enters the top-n
(:func:`reid_ext.utils.neighbors.topk_similarity`); equal blurred scores give equal
distances, whose order is then the sorter's (numpy's default sort in
:func:`reid_ext.evaluation.rank.rank_by_distance`). :func:`lbr_topn` returns the
top-n order with ties broken by the original rank (stable sort).
"""
import torch
import torch.nn.functional as F

from ..utils.neighbors import topk_rows, topk_similarity
from .variants import EVAL_VARIANTS, VariantOutput, grid, timed

_SHIFT = 3.0  # top-n distances (1 - y) - 3 lie in [-3, -1], below any cosine distance [0, 2]


def _check(query, gallery, topn, tau):
    if query.dim() != 2 or gallery.dim() != 2 or query.size(1) != gallery.size(1):
        raise ValueError(f"local_blurring_rerank: query {tuple(query.shape)} and gallery "
                         f"{tuple(gallery.shape)} must be (Q, D) and (G, D)")
    if int(topn) < 1:
        raise ValueError(f"local_blurring_rerank: topn (TEST.LBR.TOPN) must be >= 1, got {topn}")
    if not tau > 0:
        raise ValueError(f"local_blurring_rerank: tau (TEST.LBR.TAU) must be > 0, got {tau}")


def _chunk_queries(g, budget_bytes=32 * 2 ** 20):
    """Queries per chunk: their (c, G) score rows stay within ``budget_bytes`` (a few
    cache-sized blocks: the top-n selection and the distance pass re-read them)."""
    return max(1, min(4096, budget_bytes // (4 * g)))


@torch.no_grad()
def lbr_topn(query, gallery, topn=50, tau=0.1, chunk=None):
    """LBR restricted to the top-n: memory O(Q n + chunk G + 64 n D), any gallery size.

    query (Q, D), gallery (G, D) on the same device -> (scores (Q, n'), indices (Q, n'))
    with n' = min(topn, G): the top-n gallery indices in LBR order (best first) and
    their blurred cosine similarities y. Ties in y keep the original (cosine) order.
    """
    _check(query, gallery, topn, tau)
    q = F.normalize(query.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    n = min(int(topn), g.size(0))
    chunk = chunk or _chunk_queries(g.size(0))
    scores, indices = [], []
    for s0 in range(0, q.size(0), chunk):
        s, idx = topk_similarity(q[s0:s0 + chunk], g, n, normalize=False)
        y = _blur(g, idx, s, tau)
        y, order = y.sort(dim=1, descending=True, stable=True)
        scores.append(y)
        indices.append(idx.gather(1, order))
    return torch.cat(scores), torch.cat(indices)


def _blur(g, idx, s, tau, group=64):
    """Blurred scores y = W s of every query's top-n: g (G, D) normalised gallery, idx (c, n)
    top-n indices, s (c, n) their cosines -> y (c, n), with W = row-softmax(G_n G_n^T / tau).

    The neighbours are gathered for ``group`` queries at a time into one reused buffer
    (index_select, row copies), small enough to stay in cache for the affinity product
    that reads them right after.
    """
    c, n = idx.shape
    group = min(group, c)
    buf = g.new_empty(group * n, g.size(1))
    y = torch.empty_like(s)
    for s0 in range(0, c, group):
        rows = idx[s0:s0 + group].reshape(-1)
        gn = torch.index_select(g, 0, rows, out=buf[:rows.numel()]).view(-1, n, g.size(1))
        w = torch.bmm(gn, gn.transpose(1, 2)).div_(tau).softmax(dim=2)  # rows sum to 1
        y[s0:s0 + group] = torch.bmm(w, s[s0:s0 + group, :, None])[:, :, 0]  # (W G_n) q
    return y


@torch.no_grad()
def local_blurring_rerank(query, gallery, topn=50, tau=0.1, chunk=None):
    """LBR as a (Q, G) distance matrix (see the module docstring for the values).

    query (Q, D), gallery (G, D) float tensors on one device (features need not be
    normalised). Returns a (Q, G) float32 tensor on that device whose ascending order
    in each row is the LBR ranking. Work memory beyond the (Q, G) output: the top-n
    search of one query chunk and the neighbours of 64 queries (64 n D floats); no other
    (Q, G) matrix is made (the product, the selection and the distances all work on the
    output's rows in place). For galleries where a dense (Q, G) output does not fit, use
    :func:`lbr_topn`.
    """
    _check(query, gallery, topn, tau)
    q = F.normalize(query.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    n = min(int(topn), g.size(0))
    chunk = chunk or _chunk_queries(g.size(0))
    one = torch.ones((), device=q.device)
    dist = torch.empty(q.size(0), g.size(0), dtype=torch.float32, device=q.device)
    for s0 in range(0, q.size(0), chunk):
        d = dist[s0:s0 + chunk]  # every step works in place on this block of the output
        torch.mm(q[s0:s0 + chunk], g.t(), out=d)  # similarities, shared by the top-n search
        s, idx = topk_rows(d, n)
        torch.sub(one, d, out=d)  # plain cosine distance, one pass
        d.scatter_(1, idx, (1.0 - _blur(g, idx, s, tau)) - _SHIFT)
    return dist


@EVAL_VARIANTS.register()
def lbr_variant(cfg, query, gallery, model=None):
    """Reports "LBR" (TEST.LBR.ENABLED) on the evaluator's (possibly AQE-expanded) features,
    and "LBR n=.. tau=.." for each pair of TEST.LBR.GRID_TOPN x GRID_TAU; each with the
    seconds of the whole re-ranking (query-gallery product included)."""
    if "LBR" not in cfg.TEST or not cfg.TEST.LBR.ENABLED:
        return {}
    node = cfg.TEST.LBR
    params = [("LBR", (node.TOPN, node.TAU))]
    params += [(f"LBR n={n} tau={tau:g}", (n, tau))
               for n, tau in grid(node.get("GRID_TOPN", []), node.get("GRID_TAU", []))]
    out = {}
    for name, (n, tau) in params:
        dist, sec = timed(local_blurring_rerank, query.feats, gallery.feats, int(n), float(tau))
        out[name] = VariantOutput(dist=dist.cpu().numpy(), metrics={"seconds": sec})
    return out
