"""AdaSP integration: ReidMGN's loss weighting, ReidEmbeddingHead's CLS_ENABLE, the
meta-architecture check, and every projects/AdaSP config building a model on CPU."""
import glob
import os
import types

import pytest
import torch

import reid_ext  # noqa: F401
from reid_ext.config import get_cfg, merge_from_file
from reid_ext.engine.trainer import Trainer
from reid_ext.modeling.losses import adasp_loss
from reid_ext.modeling.meta_arch import ReidMGN
from reid_ext.modeling.meta_arch.mgn import HEAD_BRANCHES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(glob.glob(os.path.join(ROOT, "projects", "AdaSP", "configs", "**", "*.yml"),
                           recursive=True))
RECIPES = [p for p in CONFIGS if os.path.basename(p) not in ("Base-SBS.yml", "Base-MGN.yml")]


def load(path, *opts):
    cfg = get_cfg()
    merge_from_file(cfg, path)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False, *opts])
    return cfg


def test_every_official_row_has_a_config():
    names = {os.path.relpath(p, os.path.join(ROOT, "projects", "AdaSP", "configs")) for p in RECIPES}
    for ds in ("Market1501", "DukeMTMC", "MSMT17"):
        for v in ("mgn_single_adasp", "mgn_single_sp-h", "mgn_single_sp-lh", "mgn_CE_adasp"):
            assert f"{ds}/{v}.yml" in names
    for ds in ("VeRi", "VehicleID"):
        for v in ("norm_single_adasp", "norm_single_sp-h", "norm_single_sp-lh", "norm_CE_adasp"):
            assert f"{ds}/{v}.yml" in names
    assert {"CUHK03/mgn_CE_adasp.yml", "VERIWild/norm_CE_adasp.yml"} <= names


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_builds_model_on_cpu(path):
    cfg = load(path)
    assert "AdaSPLoss" in cfg.MODEL.LOSSES.NAME or "synth" in path
    model = Trainer.build_model(cfg)
    heads = [model.heads] if hasattr(model, "heads") else [getattr(model, f"{b}_head")
                                                            for b in HEAD_BRANCHES]
    has_cls = [hasattr(h, "weight") for h in heads]
    assert all(has_cls) == cfg.MODEL.HEADS.CLS_ENABLE and any(has_cls) == all(has_cls)
    if "mgn_" in os.path.basename(path):
        assert type(model).__name__ == "ReidMGN"


@pytest.mark.parametrize("arch,fix", [("Baseline", "ReidBaseline"), ("MGN", "ReidMGN")])
def test_fastreid_meta_arch_with_adasp_is_refused(arch, fix):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.META_ARCHITECTURE", arch, "MODEL.LOSSES.NAME", ("AdaSPLoss",),
                         "MODEL.DEVICE", "cpu", "MODEL.BACKBONE.PRETRAIN", False])
    with pytest.raises(ValueError, match=fix):
        Trainer.build_model(cfg)
    from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
    assert META_ARCH_REGISTRY.get(fix).__name__ == fix  # the suggested fix exists


def _fake_heads(B, D, C, with_cls, seed=0):
    g = torch.Generator().manual_seed(seed)
    outs = []
    for _ in HEAD_BRANCHES:
        o = {"features": torch.randn(B, D, generator=g)}
        if with_cls:
            logits = torch.randn(B, C, generator=g)
            o.update(cls_outputs=logits, pred_class_logits=logits)
        outs.append(o)
    return outs


def test_reid_mgn_weighting_matches_official():
    cfg = get_cfg()
    cfg.MODEL.LOSSES.NAME = ("CrossEntropyLoss", "AdaSPLoss")
    cfg.MODEL.LOSSES.ADASP.SCALE, cfg.MODEL.LOSSES.ADASP.TEMP = 0.1, 0.04
    fake = types.SimpleNamespace(loss_kwargs={"loss_names": tuple(cfg.MODEL.LOSSES.NAME),
                                              "cfg": cfg.MODEL.LOSSES})
    t = torch.arange(4).repeat_interleave(3)
    outs = _fake_heads(12, 6, 4, with_cls=True)
    losses = ReidMGN.losses(fake, *outs, t)
    assert sorted(losses) == sorted([f"loss_cls_{b}" for b in HEAD_BRANCHES] +
                                    [f"loss_adasp_{b}" for b in ("b1", "b2", "b3", "b22", "b33")])
    o = dict(zip(HEAD_BRANCHES, outs))
    b33 = torch.cat([o["b31"]["features"], o["b32"]["features"], o["b33"]["features"]], 1)
    assert torch.allclose(losses["loss_adasp_b33"], 0.2 * 0.1 * adasp_loss(b33, t, 0.04))
    assert torch.allclose(losses["loss_adasp_b1"], 0.02 * adasp_loss(o["b1"]["features"], t, 0.04))
    from fastreid.modeling.losses import cross_entropy_loss
    assert torch.allclose(losses["loss_cls_b21"],
                          0.125 * cross_entropy_loss(o["b21"]["cls_outputs"], t,
                                                     cfg.MODEL.LOSSES.CE.EPSILON,
                                                     cfg.MODEL.LOSSES.CE.ALPHA))
    # classifier disabled: AdaSP only, no logits needed
    cfg.MODEL.LOSSES.NAME = ("AdaSPLoss",)
    fake.loss_kwargs["loss_names"] = ("AdaSPLoss",)
    losses = ReidMGN.losses(fake, *_fake_heads(12, 6, 4, with_cls=False), t)
    assert len(losses) == 5 and all(torch.isfinite(v) for v in losses.values())


def _small_cfg(*opts):
    cfg = get_cfg()
    cfg.merge_from_list(["MODEL.META_ARCHITECTURE", "ReidBaseline",
                         "MODEL.BACKBONE.DEPTH", "18x", "MODEL.BACKBONE.FEAT_DIM", 512,
                         "MODEL.BACKBONE.PRETRAIN", False, "MODEL.DEVICE", "cpu",
                         "MODEL.HEADS.NAME", "ReidEmbeddingHead", "MODEL.HEADS.NUM_CLASSES", 4,
                         "MODEL.HEADS.NECK_FEAT", "after", *opts])
    return cfg


def test_metric_only_baseline_trains_without_classifier():
    cfg = _small_cfg("MODEL.HEADS.CLS_ENABLE", False, "MODEL.LOSSES.NAME", ("AdaSPLoss",))
    model = Trainer.build_model(cfg)
    assert not hasattr(model.heads, "weight")
    assert not any("heads.weight" in n for n, _ in model.named_parameters())
    model.train()
    batch = {"images": torch.rand(8, 3, 64, 32) * 255, "targets": torch.arange(4).repeat_interleave(2)}
    losses = model(batch)
    assert set(losses) == {"loss_adasp"}
    losses["loss_adasp"].backward()
    assert model.backbone.conv1.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(batch["images"]).shape == (8, 512)


def test_classifier_on_is_fastreid_embedding_head():
    cfg = _small_cfg("MODEL.LOSSES.NAME", ("CrossEntropyLoss", "AdaSPLoss"))
    model = Trainer.build_model(cfg)
    model.train()
    batch = {"images": torch.rand(8, 3, 64, 32) * 255, "targets": torch.arange(4).repeat_interleave(2)}
    assert set(model(batch)) == {"loss_cls", "loss_adasp"}
    assert model.heads.weight.shape == (4, 512)


def test_ce_with_classifier_off_is_refused():
    cfg = _small_cfg("MODEL.HEADS.CLS_ENABLE", False,
                     "MODEL.LOSSES.NAME", ("CrossEntropyLoss", "AdaSPLoss"))
    with pytest.raises(ValueError, match="CLS_ENABLE"):
        Trainer.build_model(cfg)
