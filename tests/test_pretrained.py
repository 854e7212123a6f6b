"""ImageNet weights from a file: torchvision-layout MobileNetV2 and ResNet into fastreid's
networks, every tensor checked; files that do not fit are refused naming file and key."""
import os

import pytest
import torch
import torchvision
from fastreid.modeling.backbones import build_backbone

from reid_ext.config import get_cfg
from reid_ext.modeling.backbones import PretrainedWeightsError
from reid_ext.modeling.backbones.mobilenetv2 import torchvision_to_fastreid

from conftest import ROOT

SHARED = os.environ.get("REID_EXT_SHARED", os.path.join(ROOT, "..", "shared"))
MOBILENET = os.path.join(SHARED, "weights", "mobilenet_v2_imagenet_features.pth")


def _cfg(name, path, **backbone):
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME = name
    cfg.MODEL.BACKBONE.PRETRAIN = True
    cfg.MODEL.BACKBONE.PRETRAIN_PATH = str(path)
    for k, v in backbone.items():
        cfg.MODEL.BACKBONE[k] = v
    return cfg


def _mobilenet_cfg(path, **kw):
    return _cfg("build_reid_mobilenetv2_backbone", path, DEPTH="1.0x", FEAT_DIM=1280, **kw)


def _assert_loaded(model, sd, names):
    own = model.state_dict()
    assert len(names) == len(sd)
    for src, dst in names.items():
        assert torch.equal(own[dst], sd[src]), (src, dst)


@pytest.mark.skipif(not os.path.isfile(MOBILENET), reason=f"no weights file at {MOBILENET}")
def test_mobilenetv2_file_loads_every_tensor_and_matches_torchvision(reid_log):
    sd = torch.load(MOBILENET, map_location="cpu", weights_only=True)
    model = build_backbone(_mobilenet_cfg(MOBILENET, LAST_STRIDE=2)).eval()
    _assert_loaded(model, sd, torchvision_to_fastreid(sd))
    assert "Loaded 312 of 312 tensors" in reid_log.text
    ref = torchvision.models.mobilenet_v2()
    ref.load_state_dict(sd, strict=False)
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ref.eval().features(x), atol=1e-5)
    assert build_backbone(_mobilenet_cfg(MOBILENET, LAST_STRIDE=1))(x).shape == (2, 1280, 8, 4)


def test_mobilenetv2_mapping_on_a_torchvision_checkpoint(tmp_path, reid_log):
    tv = torchvision.models.mobilenet_v2(width_mult=0.5)
    path = tmp_path / "mnv2_05.pth"
    torch.save(tv.state_dict(), path)  # whole network, classifier included
    model = build_backbone(_cfg("build_reid_mobilenetv2_backbone", path, DEPTH="0.5x",
                                FEAT_DIM=1280, LAST_STRIDE=2))
    sd = tv.state_dict()
    names = torchvision_to_fastreid(sd)
    assert not any(k.startswith("classifier") for k in names)
    _assert_loaded(model, {k: sd[k] for k in names}, names)
    assert "classifier.1.weight" in reid_log.text and "classifier, as expected" in reid_log.text


def test_a_file_that_does_not_fit_is_refused(tmp_path):
    resnet = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), resnet)
    with pytest.raises(PretrainedWeightsError, match=r"resnet18.pth does not fit MobileNetV2: it has no tensor for 'features.0.0.weight'"):
        build_backbone(_mobilenet_cfg(resnet, LAST_STRIDE=2))
    mnv2 = tmp_path / "mnv2_075.pth"
    torch.save(torchvision.models.mobilenet_v2(width_mult=0.75).state_dict(), mnv2)
    with pytest.raises(PretrainedWeightsError, match=r"mnv2_075.pth does not fit MobileNetV2: its tensor 'features.0.0.weight' has shape \(24, 3, 3, 3\)"):
        build_backbone(_mobilenet_cfg(mnv2, LAST_STRIDE=2))
    with pytest.raises(FileNotFoundError, match="MODEL.BACKBONE.PRETRAIN_PATH.*missing.pth"):
        build_backbone(_mobilenet_cfg(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(PretrainedWeightsError, match="cannot read weights file .*junk.pth"):
        build_backbone(_mobilenet_cfg(tmp_path / "junk.pth"))


def test_resnet_torchvision_file_loads_and_ibn_refuses_it(tmp_path, reid_log):
    tv = torchvision.models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), path)
    model = build_backbone(_cfg("build_reid_resnet_backbone", path, DEPTH="18x", FEAT_DIM=512,
                                LAST_STRIDE=2))
    sd = {k: v for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    _assert_loaded(model, sd, {k: k for k in sd})
    assert "Loaded %d of %d" % (len(sd), len(sd)) in reid_log.text and "fc.weight" in reid_log.text
    with pytest.raises(PretrainedWeightsError, match=r"r18.pth does not fit ResNet: it has no tensor for 'layer1.0.bn1.IN.weight'"):
        build_backbone(_cfg("build_reid_resnet_backbone", path, DEPTH="18x", FEAT_DIM=512,
                            WITH_IBN=True))
    with pytest.raises(PretrainedWeightsError, match=r"its tensor 'layer1.0.conv1.weight' has shape"):
        build_backbone(_cfg("build_reid_resnet_backbone", path, DEPTH="50x"))
    # the C2F backbone loads through the same checks; its attention blocks are new
    cfg = _cfg("build_resnet_c2f_backbone", path, DEPTH="18x", FEAT_DIM=512)
    cfg.MODEL.BACKBONE.ATTENTION.LAYERS = [0, 1, 1, 0]
    c2f = build_backbone(cfg)
    assert torch.equal(c2f.state_dict()["conv1.weight"], sd["conv1.weight"])
