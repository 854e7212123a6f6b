"""The one ranking evaluator of reid_ext: CMC, mAP and mINP under the Market protocol.

Gives the same numbers as fastreid's ``evaluation.rank.eval_market1501`` (tested), but
vectorised over chunks of queries, and it also accepts a ranking directly, which is
what LBR, NFormer and AFR produce.

Shapes: ``indices`` (Q, G) gallery indices, best first; ``distmat`` (Q, G), smaller is
closer; pids / camids 1-D arrays. Gallery items with the query's id *and* camera are
removed (junk); queries whose identity is absent from the rest of the gallery are skipped.
"""
import numpy as np
import torch


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def evaluate_ranking(indices, q_pids, g_pids, q_camids, g_camids, max_rank=50, chunk=512):
    """Returns ``(cmc (max_rank,), all_AP (V,), all_INP (V,))`` over the V valid queries."""
    indices, q_pids, g_pids = _np(indices), _np(q_pids), _np(g_pids)
    q_camids, g_camids = _np(q_camids), _np(g_camids)
    num_q, num_g = indices.shape
    if len(q_pids) != num_q or len(g_pids) != num_g:
        raise ValueError(f"ranking is {indices.shape} but there are {len(q_pids)} query and "
                         f"{len(g_pids)} gallery labels")
    max_rank = min(max_rank, num_g)
    cmc_sum = np.zeros(max_rank, dtype=np.float64)
    all_ap, all_inp = [], []
    ranks = np.arange(max_rank)
    for s in range(0, num_q, chunk):
        idx = indices[s:s + chunk]
        gp, gc = g_pids[idx], g_camids[idx]
        qp, qc = q_pids[s:s + chunk, None], q_camids[s:s + chunk, None]
        same_id = gp == qp
        keep = ~(same_id & (gc == qc))
        rel = same_id & keep
        num_rel = rel.sum(1)
        valid = num_rel > 0
        if not valid.any():
            continue
        rel, keep, num_rel = rel[valid], keep[valid], num_rel[valid]
        pos = np.cumsum(keep, axis=1) - 1  # position among kept items
        hits = np.cumsum(rel, axis=1)
        ap = np.where(rel, hits / np.maximum(pos + 1.0, 1.0), 0.0).sum(1) / num_rel
        first = pos[np.arange(len(rel)), rel.argmax(1)]
        last = pos[np.arange(len(rel)), rel.shape[1] - 1 - rel[:, ::-1].argmax(1)]
        all_ap.append(ap)
        all_inp.append(num_rel / (last + 1.0))
        cmc_sum += (first[:, None] <= ranks[None, :]).sum(0)
    if not all_ap:
        raise ValueError("no query identity appears in the gallery (under the Market protocol)")
    all_ap, all_inp = np.concatenate(all_ap), np.concatenate(all_inp)
    return (cmc_sum / len(all_ap)).astype(np.float32), all_ap, all_inp


def rank_by_distance(distmat):
    """(Q, G) distances -> (Q, G) gallery indices, closest first (numpy's default sort,
    as fastreid uses)."""
    return np.argsort(_np(distmat), axis=1)


def evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Same signature and result as ``fastreid.evaluation.rank.evaluate_rank`` (Market)."""
    return evaluate_ranking(rank_by_distance(distmat), q_pids, g_pids, q_camids, g_camids,
                            max_rank)


def summarize(cmc, all_ap, all_inp, ranks=(1, 5, 10)):
    """The metric dict fastreid reports (percent), ``metric`` = (mAP + R1) / 2; CMC at
    ``ranks`` (fastreid's 1, 5, 10 by default; ``TEST.CMC_RANKS``)."""
    m_ap, m_inp = float(np.mean(all_ap)), float(np.mean(all_inp))
    out = {f"Rank-{r}": float(cmc[min(r, len(cmc)) - 1]) * 100 for r in ranks}
    out.update({"mAP": m_ap * 100, "mINP": m_inp * 100, "metric": (m_ap + float(cmc[0])) / 2 * 100})
    return out
