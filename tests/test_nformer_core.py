"""NFormer functional core and whole model vs loop-level restatements of the official formula."""
import math

import pytest
import torch
import torch.nn.functional as F

from reid_ext.modeling.nformer import (NFormer, dense_landmark_agent_attention,
                                       dense_nformer_forward, landmark_agent_attention,
                                       reciprocal_neighbors)
from reid_ext.utils.neighbors import topk_similarity


def _official_dense(q, k, v, landmarks, neighbors):
    """Loop-level restatement of the official Attention (eval branch): affinity
    (q k_L^T)(q_L k^T)/sqrt(d_h), mask M = Mk * Mk^T (+ diagonal), masked softmax."""
    h, n, dh = q.shape
    out = torch.zeros_like(v)
    nb = [set(r.tolist()) for r in neighbors]
    for hh in range(h):
        w1 = q[hh] @ k[hh, landmarks].T
        w2 = q[hh, landmarks] @ k[hh].T
        aff = (w1 @ w2) / math.sqrt(dh)
        for i in range(n):
            cols = [j for j in range(n) if j == i or (j in nb[i] and i in nb[j])]
            p = torch.softmax(aff[i, cols], 0)
            out[hh, i] = p @ v[hh, cols]
    return out


def _inputs(n=40, h=2, dh=8, kk=6, l=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g, dtype=dtype)
    q, k, v = (torch.randn(h, n, dh, generator=g, dtype=dtype) for _ in range(3))
    landmarks = torch.randperm(n, generator=g)[:l]
    neighbors = topk_similarity(x, x, kk)[1]
    return q, k, v, landmarks, neighbors


@pytest.mark.parametrize("seed,kk,l,chunk", [(0, 6, 3, None), (1, 4, 5, 7), (2, 10, 1, 1)])
def test_gathered_matches_official_dense(seed, kk, l, chunk):
    q, k, v, lm, nb = _inputs(seed=seed, kk=kk, l=l)
    ref = _official_dense(q, k, v, lm, nb)
    got = landmark_agent_attention(q, k, v, lm, nb, chunk_size=chunk)  # sparse (inference) path
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)
    qg = q.clone().requires_grad_(True)  # the gathered (autograd) path
    torch.testing.assert_close(landmark_agent_attention(qg, k, v, lm, nb, chunk_size=chunk), ref,
                               rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(dense_landmark_agent_attention(q, k, v, lm, nb), ref,
                               rtol=1e-10, atol=1e-10)


def test_reciprocal_mask_and_isolated_rows():
    # 0..2 form a mutual clique; 3 points at 0 but nobody points at 3 -> only its diagonal
    nb = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 0, 1], [4, 5, 0], [5, 4, 1]])
    index, keep = reciprocal_neighbors(nb)
    assert index[:, 0].tolist() == list(range(6))
    assert keep[3].tolist() == [True, False, False, False]
    assert keep[0].tolist() == [True, False, True, True]  # self column duplicate dropped
    assert keep[4].tolist() == [True, False, True, False]  # 4<->5 mutual, 0 not
    h, dh = 2, 4
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(h, 6, dh, generator=g, dtype=torch.float64) for _ in range(3))
    lm = torch.tensor([1, 4])
    out = landmark_agent_attention(q, k, v, lm, nb)
    torch.testing.assert_close(out[:, 3], v[:, 3])  # only the diagonal survives
    torch.testing.assert_close(out, _official_dense(q, k, v, lm, nb))


def test_neighbors_without_self_and_duplicate_features():
    # duplicates: the self index may be missing from the top-k; the diagonal is still kept
    x = torch.randn(5, 8, dtype=torch.float64).repeat(4, 1)  # 20 items, 4 copies each
    nb = topk_similarity(x, x, 3)[1]
    q, k, v = (torch.randn(2, 20, 4, dtype=torch.float64) for _ in range(3))
    lm = torch.tensor([0, 7, 13])
    torch.testing.assert_close(landmark_agent_attention(q, k, v, lm, nb),
                               _official_dense(q, k, v, lm, nb))


def test_gradients_match_dense():
    q, k, v, lm, nb = _inputs(n=24, seed=5)
    ps = [t.clone().requires_grad_(True) for t in (q, k, v)]
    pd = [t.clone().requires_grad_(True) for t in (q, k, v)]
    w = torch.randn_like(v)
    (landmark_agent_attention(*ps, lm, nb, chunk_size=5) * w).sum().backward()
    (dense_landmark_agent_attention(*pd, lm, nb) * w).sum().backward()
    for a, b in zip(ps, pd):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-9, atol=1e-10)


def test_shape_errors_name_the_argument():
    q, k, v, lm, nb = _inputs()
    with pytest.raises(ValueError, match="neighbors"):
        landmark_agent_attention(q, k, v, lm, nb[:-1])
    with pytest.raises(ValueError, match="q, k, v"):
        landmark_agent_attention(q, k[:, :-1], v, lm, nb)


def test_module_matches_dense_and_is_deterministic_in_eval():
    torch.manual_seed(0)
    m = NFormer(dim=32, depth=3, num_heads=2, num_landmarks=4, topk=5, num_classes=7).double()
    # layers are initialised independently (official: identical deep copies)
    assert not torch.equal(m.blocks[0].attn.qkv.weight, m.blocks[1].attn.qkv.weight)
    assert m.classifier.out_features == 7
    x = torch.randn(50, 32, dtype=torch.float64)
    m.eval()
    out1, out2 = m(x), m(x)
    torch.testing.assert_close(out1, out2, rtol=0, atol=0)
    lm = m.draw_landmarks(50, x.device)
    assert lm.shape == (3, 4) and all(len(set(r.tolist())) == 4 for r in lm)
    torch.testing.assert_close(out1, dense_nformer_forward(m, x, lm), rtol=1e-9, atol=1e-9)
    # a different seed draws different landmarks
    m.eval_seed = 1
    assert not torch.equal(m.draw_landmarks(50, x.device), lm)
    # input scale invariance: training and test see the same normalised input
    m.eval_seed = 0
    torch.testing.assert_close(m(3.0 * x), out1)


def _loop_nformer_forward(m, x, landmarks):
    """The eval forward of ``m`` written out layer by layer (the official block: post-norm
    residuals around the attention and the MLP, BN neck), each attention by the loop-level
    :func:`_official_dense`: independent of the model's gathered and dense paths."""
    x = F.normalize(x, dim=1) * m.input_scale
    nb = topk_similarity(x, x, m.topk)[1]
    for blk, lm in zip(m.blocks, landmarks):
        n, d = x.shape
        h = blk.attn.num_heads
        q, k, v = blk.attn.qkv(x).view(n, 3, h, d // h).permute(1, 2, 0, 3)
        att = _official_dense(q, k, v, lm, nb).transpose(0, 1).reshape(n, d)
        x = blk.ln1(x + blk.attn.proj(att))
        x = blk.ln2(x + blk.mlp(x))
    return m.bnneck(x)


@torch.no_grad()
def test_whole_model_matches_the_loop_reference():
    """The model's output (gathered attention) and reid_ext's dense reference
    (``dense_nformer_forward``, the benchmark's check at large N) both equal the loop one."""
    torch.manual_seed(3)
    m = NFormer(dim=16, depth=2, num_heads=2, num_landmarks=3, topk=5).double().eval()
    x = torch.randn(30, 16, dtype=torch.float64)
    lm = m.draw_landmarks(30, x.device)
    ref = _loop_nformer_forward(m, x, lm)
    torch.testing.assert_close(m(x), ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(dense_nformer_forward(m, x, lm), ref, rtol=1e-9, atol=1e-9)


def test_module_train_outputs_and_batches():
    torch.manual_seed(1)
    m = NFormer(dim=16, depth=2, num_heads=2, num_landmarks=3, topk=4, num_classes=5)
    x = torch.randn(2, 30, 16)
    out = m.forward_train(x)
    assert out["features"].shape == (2, 30, 16) and out["logits"].shape == (2, 30, 5)
    out["logits"].sum().backward()
    assert m.blocks[0].attn.qkv.weight.grad is not None
    with pytest.raises(ValueError, match="MODEL.NFORMER.DIM"):
        m(torch.randn(10, 8))


def test_topk_similarity_exact_and_ties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 12, generator=g)
    y = torch.cat([x[:100], x[:100]])  # every gallery item duplicated: exact ties
    v, i = topk_similarity(x, y, 7, chunk=17)
    sim = F.normalize(x, dim=1) @ F.normalize(y, dim=1).T
    for r in range(0, 300, 13):
        order = sorted(range(200), key=lambda j: (-float(sim[r, j]), j))[:7]
        assert i[r].tolist() == order
    torch.testing.assert_close(v, sim.gather(1, i))


def test_topk_similarity_long_tie_runs():
    # more than k + 8 exact ties at the boundary: still the smallest indices first
    g = torch.Generator().manual_seed(1)
    base = torch.randn(3, 6, generator=g)
    gallery = base[torch.tensor([0] * 30 + [1] * 5 + [2] * 30)]
    gallery = gallery[torch.randperm(65, generator=g)]
    v, i = topk_similarity(base, gallery, 12, chunk=2)
    sim = F.normalize(base, dim=1) @ F.normalize(gallery, dim=1).T
    for r in range(3):
        order = sorted(range(65), key=lambda j: (-float(sim[r, j]), j))[:12]
        assert i[r].tolist() == order



@pytest.mark.parametrize("n,dup", [(3700, True), (4100, False), (5003, True)])
def test_topk_similarity_grouped_selection_is_exact(n, dup):
    # wide rows use the group-max pruning; compare with a full stable sort
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 8, generator=g)
    if dup:  # many exact ties (equal rows)
        x = x[torch.randint(40, (n,), generator=g)]
    q = x[:37]
    v, i = topk_similarity(q, x, 20, chunk=16)
    sim = F.normalize(q, dim=1) @ F.normalize(x, dim=1).T
    rv, ri = sim.sort(dim=1, descending=True, stable=True)
    torch.testing.assert_close(v, rv[:, :20])
    if not dup:
        assert torch.equal(i, ri[:, :20])
    else:  # equal rows may differ in the last bit between GEMM blockings
        torch.testing.assert_close(sim.gather(1, i), rv[:, :20])


def test_input_projection_keeps_the_encoder_neighbours(monkeypatch):
    """INPUT_DIM: a wider encoder feature is projected to the token size; the reciprocal
    neighbours are those of the encoder features, and it trains with the NFormer."""
    import reid_ext.modeling.nformer.model as mod
    torch.manual_seed(0)
    m = NFormer(dim=16, depth=2, num_heads=2, num_landmarks=3, topk=4, num_classes=5,
                input_dim=40)
    x = torch.randn(2, 30, 40)
    out = m.forward_train(x)
    assert out["features"].shape == (2, 30, 16) and out["logits"].shape == (2, 30, 5)
    out["logits"].sum().backward()
    assert m.input_proj.weight.grad is not None and m.input_proj.weight.shape == (16, 40)
    seen = []
    real = mod.nformer_neighbors
    monkeypatch.setattr(mod, "nformer_neighbors", lambda f, k: seen.append(f) or real(f, k))
    with torch.no_grad():
        y = m.eval()(x[0])
    assert y.shape == (30, 16) and seen[0].shape == (30, 40)
    with pytest.raises(ValueError, match="INPUT_DIM"):
        m(torch.randn(30, 16))
