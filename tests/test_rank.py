"""reid_ext's ranking evaluator gives fastreid's numbers (its NumPy Market protocol)."""
import numpy as np
import pytest
import torch
from fastreid.evaluation.rank import eval_market1501

from reid_ext.config import get_cfg
from reid_ext.evaluation import ReidExtEvaluator, evaluate_rank, evaluate_ranking
from reid_ext.evaluation.rank import summarize


def _problem(seed, nq=40, ng=300, nid=30, ncam=4):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, nid, nq), rng.integers(0, nid, ng)
    q_cams, g_cams = rng.integers(0, ncam, nq), rng.integers(0, ncam, ng)
    dist = rng.random((nq, ng)).astype(np.float32)
    # make it non-trivial: same-id pairs a bit closer
    dist -= 0.3 * (q_pids[:, None] == g_pids[None, :])
    return dist, q_pids, g_pids, q_cams, g_cams


@pytest.mark.parametrize("seed", range(5))
def test_matches_fastreid_market_protocol(seed):
    args = _problem(seed)
    cmc, ap, inp = evaluate_rank(*args, max_rank=50)
    ref_cmc, ref_ap, ref_inp = eval_market1501(*args, max_rank=50)
    np.testing.assert_allclose(cmc, ref_cmc, rtol=1e-6)
    np.testing.assert_allclose(ap, ref_ap, rtol=1e-9)
    np.testing.assert_allclose(inp, ref_inp, rtol=1e-9)


def test_ranking_input_equals_distance_input():
    dist, *labels = _problem(7)
    a = evaluate_rank(dist, *labels)
    b = evaluate_ranking(np.argsort(dist, axis=1), *labels)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_hand_checked_case():
    # one query (id 1, cam 0); gallery ranked: junk (id 1 cam 0), wrong, right, wrong, right
    ranking = np.array([[0, 1, 2, 3, 4]])
    g_pids = np.array([1, 2, 1, 3, 1])
    g_cams = np.array([0, 1, 1, 1, 2])
    cmc, ap, inp = evaluate_ranking(ranking, np.array([1]), g_pids, np.array([0]), g_cams)
    # kept order: wrong, right, wrong, right -> AP = (1/2 + 2/4) / 2, INP = 2/4
    assert ap[0] == pytest.approx(0.5)
    assert inp[0] == pytest.approx(0.5)
    assert list(cmc[:3]) == [0, 1, 1]
    assert summarize(cmc, ap, inp)["Rank-1"] == 0


def test_queries_without_match_are_skipped_and_all_missing_is_an_error():
    ranking = np.array([[0, 1], [1, 0]])
    cmc, ap, _ = evaluate_ranking(ranking, np.array([5, 1]), np.array([1, 2]),
                                  np.array([0, 0]), np.array([1, 1]))
    assert len(ap) == 1
    with pytest.raises(ValueError, match="no query identity"):
        evaluate_ranking(ranking, np.array([5, 6]), np.array([1, 2]), np.array([0, 0]),
                         np.array([1, 1]))


def test_evaluator_matches_fastreid_evaluator_metrics():
    """ReidExtEvaluator's plain numbers = fastreid's formulae on the same features."""
    from fastreid.utils.compute_dist import build_dist
    g = torch.Generator().manual_seed(3)
    nq, ng = 20, 120
    pids = torch.randint(0, 15, (nq + ng,), generator=g)
    cams = torch.randint(0, 3, (nq + ng,), generator=g)
    feats = torch.randn(nq + ng, 16, generator=g) + 2 * torch.nn.functional.one_hot(pids % 16, 16)
    cfg = get_cfg()
    ev = ReidExtEvaluator(cfg, nq)
    ev.process({"targets": pids, "camids": cams}, feats)
    res = ev.evaluate()
    dist = build_dist(feats[:nq], feats[nq:], "cosine")
    cmc, ap, inp = eval_market1501(dist, pids[:nq].numpy(), pids[nq:].numpy(),
                                   cams[:nq].numpy(), cams[nq:].numpy(), 50)
    assert res["Rank-1"] == pytest.approx(cmc[0] * 100)
    assert res["mAP"] == pytest.approx(np.mean(ap) * 100)
    assert res["mINP"] == pytest.approx(np.mean(inp) * 100)


def test_rerank_runs_on_cpu():
    g = torch.Generator().manual_seed(4)
    nq, ng = 10, 60
    pids = torch.randint(0, 8, (nq + ng,), generator=g)
    cams = torch.randint(0, 3, (nq + ng,), generator=g)
    feats = torch.randn(nq + ng, 16, generator=g) + 3 * torch.nn.functional.one_hot(pids, 16)
    cfg = get_cfg()
    cfg.TEST.RERANK.ENABLED = True
    cfg.TEST.RERANK.K1, cfg.TEST.RERANK.K2 = 6, 2
    ev = ReidExtEvaluator(cfg, nq)
    ev.process({"targets": pids, "camids": cams}, feats)
    res = ev.evaluate()
    assert 0 <= res["mAP"] <= 100
