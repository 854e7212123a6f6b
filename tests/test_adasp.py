"""AdaSP / SP-H / SP-LH loss: parity with the official computation, invariances,
degenerate batches, autocast, the registered loss and the config keys."""
import math

import pytest
import torch
import torch.nn.functional as F

import reid_ext  # noqa: F401  (registers everything)
from reid_ext.config import get_cfg
from reid_ext.modeling.losses import LOSS_REGISTRY, AdaSP, adasp_loss
from reid_ext.modeling.losses.adasp import masked_logsumexp

TYPES = ("adasp", "sp-h", "sp-lh")


def official_reference(feats, P, K, temp, loss_type):
    """Float64 re-expression of the official computation (spec section 4) for a batch of
    P contiguous blocks of K images: Kronecker masks, E = exp(Z * M), block sums by
    matrix products, reciprocal diagonals, row-wise L1 normalisation."""
    f = F.normalize(feats.double(), dim=1, eps=1e-12)
    Z = f @ f.t() / temp
    eye_p = torch.eye(P, dtype=torch.float64)
    R = torch.kron(eye_p, torch.ones(K, 1, dtype=torch.float64))          # (B, P)
    L = R.t()                                                           # (P, B)
    block = torch.kron(eye_p, torch.ones(K, K, dtype=torch.float64))      # (B, B)
    M = 1.0 - 2.0 * block                                                # -1 in class
    E = torch.exp(Z * M)
    # SP-H: block sums, diagonal replaced by its reciprocal
    sph = L @ E @ R
    sph = sph * (1 - eye_p) + torch.diag(1.0 / torch.diagonal(sph))
    # SP-LH: row sums per class, own-class entry replaced by its reciprocal, then L @
    er = E @ R
    er = er * (1 - R) + R / torch.where(R > 0, er, torch.ones_like(er))
    splh = L @ er
    h = torch.log(torch.diagonal(sph))
    e = torch.log(torch.diagonal(splh))
    s_h, s_lh = (temp * h).detach(), (temp * e).detach()
    w = 2 * s_h * s_lh / (s_h + s_lh)
    w = torch.where(s_h < 0, torch.zeros_like(w), w)
    ada = splh * (1 - eye_p) + torch.diag(torch.exp(w * h + (1 - w) * e))
    mats = {"sp-h": sph, "sp-lh": splh, "adasp": ada}
    m = mats[loss_type]
    m = m / m.sum(dim=1, keepdim=True)
    return -torch.log(torch.diagonal(m)).mean()


def clustered(P, K, D, spread, seed, dtype=torch.float64):
    """P identities x K images in contiguous blocks around random centres."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(P, D, generator=g, dtype=dtype)
    x = centres.repeat_interleave(K, 0) + spread * torch.randn(P * K, D, generator=g, dtype=dtype)
    return x, torch.arange(P).repeat_interleave(K)


def value_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    loss = fn(x)
    (g,) = torch.autograd.grad(loss, x)
    return loss.detach(), g


@pytest.mark.parametrize("loss_type", TYPES)
@pytest.mark.parametrize("P,K,spread,temp", [(4, 4, 0.5, 0.04), (6, 3, 1.5, 0.05),
                                             (3, 8, 0.3, 0.1), (5, 1, 0.5, 0.04)])
def test_parity_with_official(loss_type, P, K, spread, temp):
    x, t = clustered(P, K, 16, spread, seed=P * 10 + K)
    ref_v, ref_g = value_and_grad(lambda f: official_reference(f, P, K, temp, loss_type), x)
    v, g = value_and_grad(lambda f: adasp_loss(f, t, temp, loss_type), x)
    assert v.dtype == torch.float64
    assert torch.allclose(v, ref_v, rtol=1e-6, atol=0)
    assert torch.allclose(g, ref_g, rtol=1e-6, atol=1e-6 * ref_g.abs().max().item())


def test_adaptive_weight_regimes():
    # tight clusters: s^H > 0, AdaSP lies strictly between SP-H and SP-LH
    x, t = clustered(4, 4, 16, 0.3, seed=1)
    vals = {ty: adasp_loss(x, t, 0.04, ty).item() for ty in TYPES}
    assert vals["sp-lh"] < vals["adasp"] < vals["sp-h"]
    # scattered features: hardest similarity negative -> w = 0 -> AdaSP == SP-LH
    x, t = clustered(4, 4, 16, 5.0, seed=2)
    assert adasp_loss(x, t, 0.04, "adasp").item() == pytest.approx(
        adasp_loss(x, t, 0.04, "sp-lh").item(), rel=1e-12)


def test_invariant_to_order_and_label_values():
    x, t = clustered(5, 4, 12, 0.6, seed=3)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    relabel = torch.tensor([907, 3, 55, 12, 40])[t]
    for ty in TYPES:
        v, g = value_and_grad(lambda f: adasp_loss(f, t, 0.04, ty), x)
        vp, gp = value_and_grad(lambda f: adasp_loss(f, relabel[perm], 0.04, ty), x[perm])
        assert torch.allclose(v, vp, rtol=1e-12)
        assert torch.allclose(g[perm], gp, rtol=1e-10, atol=1e-14)


def test_unequal_counts_match_closed_form():
    """Identities of 3, 1 and 5 images, interleaved: compare with a per-identity loop."""
    g = torch.Generator().manual_seed(4)
    t = torch.tensor([2, 0, 7, 2, 0, 2, 2, 0, 2])
    x = torch.randn(9, 8, generator=g, dtype=torch.float64) + 2 * torch.randn(
        10, 8, generator=g, dtype=torch.float64)[t]
    temp = 0.05
    f = F.normalize(x, dim=1)
    z = f @ f.t() / temp
    for ty in TYPES:
        losses = []
        for c in t.unique():
            inc = t == c
            zc = z[inc][:, inc]
            h = -torch.logsumexp(-zc.flatten(), 0)
            e = torch.logsumexp(-torch.logsumexp(-zc, 1), 0)
            n = torch.logsumexp(z[inc][:, ~inc].flatten(), 0)
            sh, slh = temp * h, temp * e
            w = 2 * sh * slh / (sh + slh) if sh > 0 else torch.zeros(())
            pos = {"sp-h": h, "sp-lh": e, "adasp": w * h + (1 - w) * e}[ty]
            losses.append(F.softplus(n - pos))
        expected = torch.stack(losses).mean()
        assert adasp_loss(x, t, temp, ty).item() == pytest.approx(expected.item(), rel=1e-10)


def test_singleton_identity_only_negatives_get_gradient():
    x, t = clustered(3, 3, 8, 0.5, seed=5)
    x = torch.cat([x, torch.randn(1, 8, dtype=torch.float64)])
    t = torch.cat([t, torch.tensor([9])])
    for ty in TYPES:
        v, g = value_and_grad(lambda f: adasp_loss(f, t, 0.04, ty), x)
        assert torch.isfinite(v) and torch.isfinite(g).all() and g[-1].abs().sum() > 0
    # one image per identity (K = 1): matches the official K = 1 computation
    x, t = clustered(6, 1, 8, 0.5, seed=6)
    ref = official_reference(x, 6, 1, 0.04, "adasp")
    assert adasp_loss(x, t, 0.04).item() == pytest.approx(ref.item(), rel=1e-10)


def test_single_identity_batch_is_zero_with_finite_gradient():
    x = torch.randn(6, 8, requires_grad=True)
    t = torch.full((6,), 3)
    for ty in TYPES:
        loss = adasp_loss(x, t, 0.04, ty)
        (g,) = torch.autograd.grad(loss, x)
        assert loss.item() == 0.0 and torch.isfinite(g).all() and g.abs().sum() == 0


def test_zero_feature_and_extreme_temperature_are_finite():
    x, t = clustered(3, 4, 8, 0.5, seed=7, dtype=torch.float32)
    x[0] = 0.0
    for temp in (0.005, 0.04, 10.0):
        v, g = value_and_grad(lambda f: adasp_loss(f, t, temp), x)
        assert torch.isfinite(v) and torch.isfinite(g).all()


def test_masked_logsumexp_empty_rows():
    x = torch.tensor([[1.0, 2.0], [3.0, float("-inf")]], requires_grad=True)
    mask = torch.tensor([[True, True], [False, True]])
    out = masked_logsumexp(x, mask)
    assert out[0].item() == pytest.approx(math.log(math.e + math.e ** 2))
    assert out[1].item() == float("-inf")
    out[0].backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_close_to_fp32(dtype):
    x, t = clustered(8, 4, 64, 0.7, seed=8, dtype=torch.float32)
    w = torch.randn(64, 64) / 8
    ref = adasp_loss(x @ w, t, 0.04).item()
    with torch.autocast("cpu", dtype=dtype):
        y = x @ w  # low-precision features, as a head under autocast would give
        assert y.dtype == dtype
        loss = adasp_loss(y, t, 0.04)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(ref, rel=0.03)


def test_errors_name_the_fault():
    x, t = torch.randn(4, 3), torch.tensor([0, 0, 1, 1])
    with pytest.raises(ValueError, match="MODEL.LOSSES.ADASP.TYPE"):
        adasp_loss(x, t, 0.04, "sp-x")
    with pytest.raises(ValueError, match="MODEL.LOSSES.ADASP.TEMP"):
        adasp_loss(x, t, 0.0)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        adasp_loss(x, t[:3])
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        adasp_loss(x[None], t)
    with pytest.raises(ValueError, match="B >= 1"):
        adasp_loss(x[:0], t[:0])


def test_module_and_registered_loss_use_config_keys():
    cfg = get_cfg()
    assert cfg.MODEL.LOSSES.ADASP.TEMP == 0.05 and cfg.MODEL.LOSSES.ADASP.TYPE == "adasp"
    assert cfg.MODEL.LOSSES.ADASP.SCALE == 1.0 and cfg.MODEL.HEADS.CLS_ENABLE is True
    cfg.MODEL.LOSSES.ADASP.SCALE = 0.5
    cfg.MODEL.LOSSES.ADASP.TEMP = 0.04
    cfg.MODEL.LOSSES.ADASP.TYPE = "sp-h"
    x, t = clustered(4, 4, 16, 0.5, seed=9, dtype=torch.float32)
    out = LOSS_REGISTRY.get("AdaSPLoss")({"features": x}, t, cfg.MODEL.LOSSES)
    assert set(out) == {"loss_adasp"}
    expected = 0.5 * adasp_loss(x, t, 0.04, "sp-h")
    assert torch.allclose(out["loss_adasp"], expected)
    assert torch.allclose(AdaSP(0.04, "sp-h")(x, t), expected / 0.5)


def test_two_images_per_identity_collapse_the_three_types():
    """K = 2 (VIPeR): each identity has one cross pair s, so h = s/t - log 2 and
    e = s/t + log 2 up to exp(-(1 - s)/t) terms: SP-H, SP-LH and AdaSP give the same
    gradient and differ only by a constant logit shift (<= 2 log 2, i.e. a cosine
    margin of 2 t log 2). The VIPeR README relies on this."""
    torch.manual_seed(0)
    P, temp = 16, 0.04
    base = F.normalize(torch.randn(P, 64), dim=1)
    x = (base.repeat_interleave(2, 0) + 0.6 * torch.randn(2 * P, 64)).double()
    y = torch.arange(P).repeat_interleave(2)
    grads, losses = {}, {}
    for t in ("sp-h", "sp-lh", "adasp"):
        f = x.clone().requires_grad_(True)
        loss = adasp_loss(f, y, temp, t)
        loss.backward()
        grads[t], losses[t] = f.grad, loss.item()
    for t in ("sp-lh", "adasp"):
        cos = F.cosine_similarity(grads[t].flatten(), grads["sp-h"].flatten(), dim=0)
        assert cos > 0.99, (t, cos)
    assert losses["sp-h"] > losses["adasp"] > losses["sp-lh"]
    # the shift: SP-H's loss is SP-LH's with every positive logit lowered by 2 log 2
    fn = F.normalize(x, dim=1)
    z = fn @ fn.T / temp
    same = y[:, None] == y[None, :]
    n = torch.stack([torch.logsumexp(z[y == c][:, y != c].flatten(), 0) for c in range(P)])
    s = z[0::2, 1].new_tensor([z[2 * c, 2 * c + 1] for c in range(P)])
    assert same.sum() == 4 * P and (s * temp < 0.9).all()
    shifted = F.softplus(n - (s + math.log(2))).mean()  # SP-LH with hard positives
    assert losses["sp-lh"] == pytest.approx(shifted.item(), rel=1e-3)
    assert losses["sp-h"] == pytest.approx(F.softplus(n - (s - math.log(2))).mean().item(), rel=1e-3)
