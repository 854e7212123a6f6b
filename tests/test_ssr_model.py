"""SSR functional cores, modules, the SSRHashing meta-architecture and the eval variant."""
import numpy as np
import pytest
import torch
from fastreid.modeling import build_model

from reid_ext.config import get_cfg
from reid_ext.evaluation import (EVAL_VARIANTS, FeatureSet, ReidExtEvaluator,
                                 check_variant_configs)
from reid_ext.evaluation.hashing import afr_rank, hamming_rank, pack_bits, ssr_hashing
from reid_ext.modeling.hashing import (AttributeGuidedAttention, HashHead, attribute_bce,
                                       binarize, relax, split_bits, ssr_loss)


def test_ssr_loss_identity_and_gradient():
    h = torch.randn(4, 16, requires_grad=True)
    loss = ssr_loss(h, "tanh")
    torch.testing.assert_close(loss, (1 - torch.tanh(h).abs()).mean())
    loss.backward()
    # minimising pushes |h| up: the gradient has the opposite sign of h
    assert (h.grad * h.detach() < 0).all()
    hs = torch.tensor([[-2.0, 0.5]])
    torch.testing.assert_close(ssr_loss(hs, "sigmoid"),
                               ((torch.sigmoid(hs) - torch.tensor([[0.0, 1.0]])).abs()).mean())
    assert binarize(hs).tolist() == [[-1.0, 1.0]] and not binarize(h).requires_grad
    with pytest.raises(ValueError, match="RELAXATION"):
        relax(hs, "relu")


def test_attribute_bce_ignores_unknown():
    logits = torch.tensor([[2.0, -1.0, 0.3]])
    targets = torch.tensor([[1.0, -1.0, 0.0]])
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[:, [0, 2]], targets[:, [0, 2]])
    torch.testing.assert_close(attribute_bce(logits, targets), ref)
    assert float(attribute_bce(logits, -torch.ones(1, 3))) == 0.0
    with pytest.raises(ValueError, match="MODEL.ATTR.NUM"):
        attribute_bce(logits, torch.zeros(1, 4))


def test_split_bits_and_hash_head_shapes():
    assert split_bits(2048, 6) == (1028, 170)
    assert split_bits(64, 6) == (34, 5)
    assert split_bits(64, 0) == (64, 0)
    assert split_bits(96, 6, 8) == (48, 8)
    with pytest.raises(ValueError, match="MODEL.HASH.BITS=8"):
        split_bits(8, 6)
    head = HashHead(32, 34, 6, 5)
    feat = torch.randn(3, 32, 12, 4)
    h = head(feat)
    assert h.shape == (3, 64) and head.bits == 64
    # stripe 1 only sees the top rows: changing the bottom rows leaves its code alone
    feat2 = feat.clone()
    feat2[:, :, 6:] += 5
    head.eval()
    a, b = head(feat), head(feat2)
    torch.testing.assert_close(a[:, 34:39], b[:, 34:39])
    assert not torch.allclose(a[:, -5:], b[:, -5:])


def test_aab_uses_attributes():
    torch.manual_seed(0)
    aab = AttributeGuidedAttention(32, 30, reduction=4)
    feat = torch.randn(2, 32, 6, 4)
    p1, p2 = torch.zeros(2, 30), torch.ones(2, 30)
    out1, out2 = aab(feat, p1), aab(feat, p2)
    assert out1.shape == feat.shape and not torch.allclose(out1, out2)
    with pytest.raises(ValueError, match="30 attribute"):
        aab(feat, torch.zeros(2, 23))


def _cfg(bits=64, attrs=True):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "SSRHashing"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.PRETRAIN = False
    cfg.MODEL.BACKBONE.DEPTH = "18x"
    cfg.MODEL.BACKBONE.FEAT_DIM = 512
    cfg.MODEL.HEADS.NUM_CLASSES = 4
    cfg.MODEL.HASH.BITS = bits
    cfg.MODEL.ATTR.ENABLED = attrs
    cfg.MODEL.ATTR.NUM = 30
    return cfg


def test_meta_arch_train_step_and_eval_outputs():
    torch.manual_seed(0)
    model = build_model(_cfg())
    batch = {"images": torch.rand(8, 3, 96, 48) * 255, "targets": torch.arange(4).repeat(2),
             "attributes": torch.randint(0, 2, (8, 30)).float()}
    losses = model(batch)
    assert set(losses) == {"loss_cls", "loss_triplet", "loss_ssr", "loss_attr"}
    sum(losses.values()).backward()
    assert model.hash_head.global_fc.weight.grad is not None
    assert model.attr_head.fc.weight.grad is not None
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert out["features"].shape == (8, 64) and out["codes"].dtype == torch.uint8
    assert torch.equal(out["codes"], pack_bits(out["hash_logits"] > 0))
    assert out["attr_logits"].shape == (8, 30) and out["attr_targets"].shape == (8, 30)
    batch.pop("attributes")
    model.train()
    with pytest.raises(KeyError, match="attributes"):
        model(batch)


def test_variant_reports_hamming_and_afr_through_evaluator(tmp_path):
    """ReidExtEvaluator + ssr_hashing on crafted codes: perfect codes give mAP 100."""
    assert EVAL_VARIANTS.get("ssr_hashing") is ssr_hashing
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.TEST.HASH.ENABLED = True
    cfg.TEST.HASH.AFR_W = 3
    rng = np.random.default_rng(0)
    ids = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2])  # 3 queries, 6 gallery
    cams = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    id_code = torch.from_numpy(rng.standard_normal((3, 32))).float()
    attr_code = torch.from_numpy(rng.standard_normal((3, 30))).float()
    ev = ReidExtEvaluator(cfg, num_query=3)
    ev.reset()
    ev.process({"targets": torch.from_numpy(ids), "camids": torch.from_numpy(cams)},
               {"features": id_code[ids] + 0.01 * torch.randn(9, 32),
                "hash_logits": id_code[ids], "attr_logits": attr_code[ids],
                "attr_targets": (attr_code[ids] > 0).float()})
    res = ev.evaluate()
    assert res["hash32"]["mAP"] == pytest.approx(100.0)
    afr = res["hash32+AFR(w=3)"]
    assert afr["mAP"] == pytest.approx(100.0) and afr["attr acc"] == pytest.approx(100.0)
    assert afr["ms/query"] > 0 and res["hash32"]["float ms/query"] > 0
    saved = np.load(tmp_path / "hash_codes_q3_g6.npz")
    np.testing.assert_array_equal(saved["gallery_codes"], pack_bits(id_code[ids[3:]] > 0).numpy())
    assert saved["query_attr_codes"].shape == (3, 4)

    cfg.TEST.HASH.ENABLED = False
    assert ssr_hashing(cfg, None, None, None) == {}


def test_variant_rankings_equal_functional_cores():
    cfg = get_cfg()
    cfg.TEST.HASH.EXPORT = False
    cfg.TEST.HASH.ENABLED = True
    cfg.TEST.HASH.AFR_W = 4
    g = torch.Generator().manual_seed(1)

    def fs(n):
        return FeatureSet(torch.randn(n, 8, generator=g), np.arange(n) % 3, np.zeros(n),
                          {"hash_logits": torch.randn(n, 24, generator=g),
                           "attr_logits": torch.randn(n, 6, generator=g)})
    q, gal = fs(5), fs(12)
    out = ssr_hashing(cfg, q, gal, None)
    qc, gc = q.extras["hash_logits"] > 0, gal.extras["hash_logits"] > 0
    qa, ga = q.extras["attr_logits"] > 0, gal.extras["attr_logits"] > 0
    assert torch.equal(out["hash24"].ranking, hamming_rank(qc, gc))
    assert torch.equal(out["hash24+AFR(w=4)"].ranking, afr_rank(qa, ga, qc, gc, 4))
    q.extras.pop("attr_logits")
    with pytest.raises(KeyError, match="attr_logits"):
        ssr_hashing(cfg, q, gal, None)


def test_hashing_with_aqe_is_refused_naming_both_keys():
    """TEST.AQE would expand the float features but not the codes: the combination stops,
    in the variant (evaluator, Python use) and when the trainer builds the model."""
    from reid_ext.engine import Trainer
    cfg = get_cfg()
    cfg.MODEL.DEVICE = "cpu"
    cfg.TEST.HASH.ENABLED = True
    cfg.TEST.HASH.EXPORT = False
    cfg.TEST.AQE.ENABLED = True
    msg = r"TEST.HASH.ENABLED and TEST.AQE.ENABLED are both True.*TEST.AQE.ENABLED False"
    ids = torch.tensor([0, 1, 0, 1, 0, 1])
    ev = ReidExtEvaluator(cfg, num_query=2)
    ev.process({"targets": ids, "camids": torch.tensor([0, 0, 1, 1, 2, 2])},
               {"features": torch.randn(6, 8), "hash_logits": torch.randn(6, 16)})
    with pytest.raises(ValueError, match=msg):
        ev.evaluate()
    with pytest.raises(ValueError, match=msg):
        check_variant_configs(cfg)
    with pytest.raises(ValueError, match=msg):
        Trainer.build_model(cfg)  # before training (both trainers) and --eval-only inference
    cfg.TEST.AQE.ENABLED = False
    check_variant_configs(cfg)
    cfg.TEST.HASH.ENABLED, cfg.TEST.AQE.ENABLED = False, True  # AQE alone (LBR, plain): fine
    check_variant_configs(cfg)
