"""``build_reid_resnet_backbone``: fastreid's ResNet with ImageNet weights from a file,
checked (:func:`~reid_ext.modeling.backbones.pretrained.load_pretrained`).

fastreid's ``build_resnet_backbone`` is used for the network (depth 18x-101x, IBN-a, SE,
non-local, last stride); torchvision's ResNet files have the same layer names, so only
the classifier ``fc.*`` is left out. A file of another depth or layout (a plain ResNet
file for an IBN network, say) is refused naming the first tensor that does not fit,
where fastreid would log the mismatch and train from the random start. With
``PRETRAIN_PATH`` empty, fastreid's own download is used, as before.
"""
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from fastreid.modeling.backbones.resnet import build_resnet_backbone

from .pretrained import load_pretrained


def build_checked_resnet(cfg, allow_missing=None):
    """fastreid's ResNet for ``cfg`` with ``PRETRAIN_PATH`` loaded through the checks."""
    bb = cfg.MODEL.BACKBONE
    if not (bb.PRETRAIN and bb.PRETRAIN_PATH):
        return build_resnet_backbone(cfg)
    plain = cfg.clone()
    plain.defrost()
    plain.MODEL.BACKBONE.PRETRAIN = False
    model = build_resnet_backbone(plain)
    load_pretrained(model, bb.PRETRAIN_PATH, allow_missing=allow_missing,
                    expect_unexpected=("fc.",))
    return model


@BACKBONE_REGISTRY.register()
def build_reid_resnet_backbone(cfg):
    """fastreid's ResNet (``MODEL.BACKBONE.*``) with checked ImageNet weights."""
    return build_checked_resnet(cfg)
