"""SFT: functional core against a slow reference and hand-checkable cases; SFTHead."""
import math

import pytest
import torch

import reid_ext  # noqa: F401
from reid_ext.config import get_cfg
from reid_ext.modeling.sft import sft_transition, spectral_feature_transform


def _reference_sft(x, sigma):
    """Per-element loops, float64: T_ij = exp(cos_ij / s) / sum_m exp(cos_im / s); T @ x."""
    x = x.double()
    b, d = x.shape
    norms = [math.sqrt(sum(float(x[i, k]) ** 2 for k in range(d))) for i in range(b)]
    out = torch.zeros(b, d, dtype=torch.float64)
    for i in range(b):
        w = []
        for j in range(b):
            cos = sum(float(x[i, k]) * float(x[j, k]) for k in range(d)) / (norms[i] * norms[j])
            w.append(math.exp(cos / sigma))
        z = sum(w)
        for j in range(b):
            out[i] += (w[j] / z) * x[j]
    return out


@pytest.mark.parametrize("sigma", [0.1, 0.5, 2.0])
def test_sft_matches_slow_reference(sigma):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(7, 5, generator=g) * 3  # non-negative like post-ReLU pooling, not normalised
    out = spectral_feature_transform(x, sigma)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out.double(), _reference_sft(x, sigma), rtol=1e-5, atol=1e-5)


def test_sft_hand_checkable():
    # x1, x2 orthogonal; x3 = 2 * x1 (same direction, cos 1). sigma = 1.
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    e = math.e
    t = sft_transition(x, 1.0)
    row0 = torch.tensor([e, 1.0, e]) / (2 * e + 1)  # cos = 1, 0, 1; diagonal kept
    row1 = torch.tensor([1.0, e, 1.0]) / (e + 2)
    torch.testing.assert_close(t[0], row0)
    torch.testing.assert_close(t[1], row1)
    torch.testing.assert_close(t[2], row0)
    out = spectral_feature_transform(x, 1.0)
    # un-normalised X is averaged: row 0 = (e*1 + e*2, 1) / (2e + 1)
    torch.testing.assert_close(out[0], torch.tensor([3 * e, 1.0]) / (2 * e + 1))
    torch.testing.assert_close(out[1], torch.tensor([3.0, e]) / (e + 2))


def test_sft_rows_stochastic_and_identity_limits():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    t = sft_transition(x, 0.3)
    torch.testing.assert_close(t.sum(1), torch.ones(6))
    # very small sigma: T -> identity (self-loop dominates distinct directions)
    torch.testing.assert_close(spectral_feature_transform(x, 1e-4), x)
    # batch of one: unchanged
    torch.testing.assert_close(spectral_feature_transform(x[:1], 0.1), x[:1])


def test_sft_gradient_flows_through_affinities():
    x = torch.rand(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64,
                   requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spectral_feature_transform(v, 0.2), (x,))
    # the gradient differs from treating T as a constant
    out = spectral_feature_transform(x, 0.2)
    w = torch.arange(15, dtype=torch.float64).view(5, 3)
    (g_full,) = torch.autograd.grad((out * w).sum(), x)
    t = sft_transition(x, 0.2).detach()
    (g_const,) = torch.autograd.grad(((t @ x) * w).sum(), x)
    assert not torch.allclose(g_full, g_const)


def test_sft_errors_name_the_fault():
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        spectral_feature_transform(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="SIGMA"):
        spectral_feature_transform(torch.ones(2, 3), sigma=0)


# ---------------------------------------------------------------- the head

def _cfg(**over):
    cfg = get_cfg()
    opts = ["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", "False", "MODEL.BACKBONE.DEPTH", "18x",
            "MODEL.BACKBONE.FEAT_DIM", "512", "MODEL.HEADS.NUM_CLASSES", "4",
            "MODEL.META_ARCHITECTURE", "ReidBaseline", "MODEL.HEADS.WITH_BNNECK", "True"]
    for k, v in over.items():
        opts += [k.replace("__", "."), v]
    cfg.merge_from_list(opts)
    return cfg


def _head(name, **over):
    from fastreid.modeling.heads import build_heads
    torch.manual_seed(0)
    return build_heads(_cfg(MODEL__HEADS__NAME=name, **over))


@pytest.mark.parametrize("extra", [{}, {"MODEL__HEADS__EMBEDDING_DIM": "64"},
                                   {"MODEL__HEADS__CLS_LAYER": "CosSoftmax"}])
def test_head_inference_equals_embedding_head(extra):
    base = _head("EmbeddingHead", **extra)
    sft = _head("SFTHead", **extra)
    sft.load_state_dict(base.state_dict())  # same weights and keys
    feats = torch.randn(6, 512, 4, 2, generator=torch.Generator().manual_seed(3))
    # run a training step on both so BN running stats are non-trivial in the same way? no:
    # set identical non-trivial stats instead, then compare in eval mode
    for m in (base, sft):
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.running_mean.copy_(torch.linspace(-1, 1, mod.num_features))
                mod.running_var.copy_(torch.linspace(0.5, 2, mod.num_features))
    base.eval(), sft.eval()
    torch.testing.assert_close(sft(feats), base(feats), rtol=0, atol=0)


def test_head_disabled_training_equals_embedding_head():
    base = _head("EmbeddingHead")
    sft = _head("SFTHead", MODEL__HEADS__SFT__ENABLED="False")
    sft.load_state_dict(base.state_dict())
    feats = torch.randn(8, 512, 4, 2, generator=torch.Generator().manual_seed(4))
    t = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    a, b = base.train()(feats, t), sft.train()(feats, t)
    assert set(a) == set(b)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_head_deep_supervision_views():
    head = _head("SFTHead", MODEL__HEADS__SFT__SIGMA="0.2").train()
    feats = torch.rand(8, 512, 4, 2, generator=torch.Generator().manual_seed(5))
    t = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    out = head(feats, t)
    orig, tr = out["views"]
    pooled = feats.mean((2, 3))
    torch.testing.assert_close(orig["features"], pooled)  # NECK_FEAT before
    torch.testing.assert_close(tr["features"], spectral_feature_transform(pooled, 0.2))
    # the neck BN normalises the 2B rows jointly: neck = BN(cat[X, X'])
    bn = head.bottleneck[0]
    both = torch.cat([pooled, spectral_feature_transform(pooled, 0.2)])
    mu, var = both.mean(0), both.var(0, unbiased=False)
    neck = (both - mu) / torch.sqrt(var + bn.eps) * bn.weight + bn.bias
    torch.testing.assert_close(orig["pred_class_logits"], neck[:8] @ head.weight.t(), rtol=1e-4,
                               atol=1e-4)
    torch.testing.assert_close(tr["pred_class_logits"], neck[8:] @ head.weight.t(), rtol=1e-4,
                               atol=1e-4)
    for k in ("cls_outputs", "pred_class_logits", "features"):
        assert out[k] is orig[k]


def test_head_no_deep_supervision_uses_transformed_only():
    head = _head("SFTHead", MODEL__HEADS__SFT__DEEP_SUP="False").train()
    feats = torch.rand(8, 512, 4, 2, generator=torch.Generator().manual_seed(6))
    out = head(feats, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    assert "views" not in out
    torch.testing.assert_close(out["features"], spectral_feature_transform(feats.mean((2, 3)), 0.1))


@pytest.mark.parametrize("metric_views", ["original", "all"])
@pytest.mark.parametrize("losses", [("CrossEntropyLoss", "TripletLoss"), ("CircleLoss",),
                                    ("Cosface",), ("AdaSPLoss",)])
def test_model_losses_over_views(losses, metric_views):
    """CE is averaged over X and X'; metric losses see X only (official) unless
    METRIC_VIEWS is "all"."""
    from fastreid.modeling import build_model
    from reid_ext.modeling.losses import registered_loss_names
    missing = [n for n in losses if n not in registered_loss_names()]
    assert not missing, f"losses {missing} are not registered (reid_ext.modeling.losses)"
    cfg = _cfg(MODEL__HEADS__NAME="SFTHead", MODEL__HEADS__SFT__METRIC_VIEWS=metric_views)
    cfg.MODEL.LOSSES.NAME = losses
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batch = {"images": torch.rand(8, 3, 64, 32) * 255,
             "targets": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])}
    loss = model(batch)
    total = sum(loss.values())
    assert torch.isfinite(total)
    total.backward()
    # recompute by hand from the head's two views
    model.zero_grad()
    feats = model.backbone(model.preprocess_image(batch))
    out = model.heads(feats, batch["targets"])
    expect = {}
    from reid_ext.modeling.losses import get_loss
    for n in losses:
        views = out["views"] if n == "CrossEntropyLoss" or metric_views == "all" \
            else out["views"][:1]
        for view in views:
            for k, v in get_loss(n)(view, batch["targets"], cfg.MODEL.LOSSES).items():
                expect[k] = expect.get(k, 0) + v / len(views)
    assert set(expect) == set(loss)
    for k in expect:
        # BN in train mode: the second forward gives the same batch statistics
        torch.testing.assert_close(loss[k], expect[k], rtol=1e-4, atol=1e-5)
    if metric_views == "original" and losses != ("CrossEntropyLoss", "TripletLoss"):
        # the X' view really is left out: its metric loss differs from X's
        name = losses[0]
        on_x = get_loss(name)(out["views"][0], batch["targets"], cfg.MODEL.LOSSES)
        on_sft = get_loss(name)(out["views"][1], batch["targets"], cfg.MODEL.LOSSES)
        assert all(not torch.allclose(on_x[k], on_sft[k]) for k in on_x)
