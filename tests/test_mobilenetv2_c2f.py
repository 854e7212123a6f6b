"""MobileNetV2 with C2F blocks (the Combined model on VIPeR): placement by stride stage,
ImageNet weights loaded before insertion, identity at initialisation, errors."""
import pytest
import torch
import torchvision
from fastreid.modeling.backbones import build_backbone

from reid_ext.config import get_cfg
from reid_ext.modeling.backbones import C2FAttention


def _cfg(path, name="build_mobilenetv2_c2f_backbone", layers=(0, 1, 1, 0), **att):
    cfg = get_cfg()
    b = cfg.MODEL.BACKBONE
    b.NAME, b.DEPTH, b.FEAT_DIM, b.LAST_STRIDE = name, "0.5x", 1280, 2
    b.PRETRAIN, b.PRETRAIN_PATH = True, str(path)
    b.ATTENTION.LAYERS, b.ATTENTION.HEADS, b.ATTENTION.PATCH_SIZE = list(layers), 4, 2
    for k, v in att.items():
        b.ATTENTION[k] = v
    return cfg


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "mnv2_05.pth"
    torch.save(torchvision.models.mobilenet_v2(width_mult=0.5).state_dict(), path)
    return path


def test_blocks_after_the_stage_ends_and_identity_at_init(weights):
    model = build_backbone(_cfg(weights, layers=(1, 2, 1, 1))).eval()
    plain = build_backbone(_cfg(weights, name="build_reid_mobilenetv2_backbone")).eval()
    wrapped = [i for i, f in enumerate(model.features) if isinstance(f, torch.nn.Sequential)
               and isinstance(f[-1], C2FAttention)]
    assert wrapped == [3, 5, 6, 13, 17]  # last 1 of s4, last 2 of s8, last of s16 and s32
    assert [model.features[i][1].channels for i in wrapped] == [16, 16, 16, 48, 160]
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))  # pretrained output unchanged at step 0
    y = model.train()(x)
    y.mean().backward()
    assert model.features[13][1].qkv.weight.grad is not None


def test_bad_placements_are_refused(weights):
    with pytest.raises(ValueError, match=r"LAYERS\[0\]=3 exceeds the 2 blocks of the stride-4"):
        build_backbone(_cfg(weights, layers=(3, 0, 0, 0)))
    with pytest.raises(ValueError, match="ATTENTION.TYPE"):
        build_backbone(_cfg(weights, TYPE="sparse"))
    model = build_backbone(_cfg(weights, TYPE="none"))
    assert not any(isinstance(f, torch.nn.Sequential) for f in model.features[1:])
