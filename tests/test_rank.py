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


def _clustered_set(seed, nq=30, ng=150, ids=15, d=24, noise=1.0, scale=1.0):
    """Identity clusters with noise (every id in the gallery at least once), 4 cameras;
    a common offset so that cosine and Euclidean rankings differ."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ids, d, generator=g)
    pids = torch.cat([torch.arange(ids), torch.randint(0, ids, (nq + ng - ids,), generator=g)])
    pids = pids[torch.randperm(nq + ng, generator=g)]
    cams = torch.randint(0, 4, (nq + ng,), generator=g)
    feats = scale * (centres[pids] + noise * torch.randn(nq + ng, d, generator=g) + 0.5)
    return feats, pids, cams


def _fastreid_rerank(q, g, k1, k2, lambda_value, metric):
    """fastreid's ReidEvaluator.evaluate (TEST.RERANK) written out: the original distance,
    features normalised for cosine, build_dist(metric="jaccard") (Jaccard of query +
    gallery, sliced [:Q, Q:]) and the lambda blend. Only the faiss search differs:
    search_option=3 (CPU) instead of build_dist's 0, which needs CUDA."""
    from fastreid.utils.compute_dist import build_dist, compute_jaccard_distance
    dist = build_dist(q, g, metric)
    if metric == "cosine":
        q, g = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(g, dim=1)
    jaccard = compute_jaccard_distance(torch.cat((q, g), dim=0), k1=k1, k2=k2, search_option=3)
    jaccard = jaccard[: q.size(0), q.size(0):]
    return jaccard * (1 - lambda_value) + dist * lambda_value


@pytest.mark.parametrize("seed,k1,k2,lam,metric,scale", [
    (0, 20, 6, 0.3, "cosine", 1.0),  # fastreid's defaults
    (1, 10, 3, 0.1, "cosine", 1.0),
    (2, 6, 1, 0.5, "cosine", 1.0),  # k2 = 1: no local query expansion
    (3, 15, 2, 0.0, "cosine", 1.0),  # Jaccard only
    (4, 12, 4, 0.3, "euclidean", 0.2),  # small features: softmax(-d^2) is not one-hot
])
def test_k_reciprocal_distance_matches_fastreid_formula(seed, k1, k2, lam, metric, scale):
    from fastreid.utils.compute_dist import build_dist
    from reid_ext.evaluation import k_reciprocal_distance
    feats, pids, cams = _clustered_set(seed, scale=scale)
    nq = 30
    q, g = feats[:nq], feats[nq:]
    ours = k_reciprocal_distance(q, g, k1, k2, lam, metric)
    ref = _fastreid_rerank(q, g, k1, k2, lam, metric)
    assert ours.shape == (nq, 150)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6)
    # the case is informative: re-ranking moves most rankings and changes mAP
    plain = build_dist(q, g, metric)
    assert (np.argsort(ref, 1) != np.argsort(plain, 1)).any(1).mean() > 0.5
    labels = (pids[:nq].numpy(), pids[nq:].numpy(), cams[:nq].numpy(), cams[nq:].numpy())
    _, ap_plain, _ = eval_market1501(plain, *labels, 50)
    _, ap_ref, _ = eval_market1501(ref, *labels, 50)
    assert 0.3 < np.mean(ap_plain) < 0.95 and abs(np.mean(ap_ref) - np.mean(ap_plain)) > 0.005


@pytest.mark.parametrize("aqe", [False, True])
def test_evaluator_rerank_metrics_match_fastreid(aqe):
    """TEST.RERANK through ReidExtEvaluator = fastreid's evaluator steps (AQE, distance,
    re-ranking) scored by fastreid's eval_market1501."""
    from fastreid.evaluation.query_expansion import aqe as fastreid_aqe
    feats, pids, cams = _clustered_set(5)
    nq = 30
    cfg = get_cfg()
    cfg.TEST.RERANK.ENABLED = True
    cfg.TEST.RERANK.K1, cfg.TEST.RERANK.K2, cfg.TEST.RERANK.LAMBDA = 12, 4, 0.2
    cfg.TEST.AQE.ENABLED = aqe
    cfg.TEST.AQE.QE_K = 3
    ev = ReidExtEvaluator(cfg, nq)
    ev.process({"targets": pids, "camids": cams}, feats)
    res = ev.evaluate()
    q, g = feats[:nq], feats[nq:]
    if aqe:
        q, g = fastreid_aqe(q, g, cfg.TEST.AQE.QE_TIME, 3, cfg.TEST.AQE.ALPHA)
    dist = _fastreid_rerank(q, g, 12, 4, 0.2, cfg.TEST.METRIC)
    cmc, ap, inp = eval_market1501(dist, pids[:nq].numpy(), pids[nq:].numpy(),
                                   cams[:nq].numpy(), cams[nq:].numpy(), 50)
    for r in (1, 5, 10):
        assert res[f"Rank-{r}"] == pytest.approx(cmc[r - 1] * 100)
    assert res["mAP"] == pytest.approx(np.mean(ap) * 100)
    assert res["mINP"] == pytest.approx(np.mean(inp) * 100)
    assert 30 < res["mAP"] < 99
