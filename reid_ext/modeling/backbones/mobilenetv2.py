"""``build_reid_mobilenetv2_backbone``: fastreid's MobileNetV2 with torchvision ImageNet
weights from a file, and a last-stride option.

MobileNetV2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018. The network is fastreid's own (``fastreid.modeling.backbones.mobilenet``,
any ``MODEL.BACKBONE.NORM``, width ``DEPTH`` 1.0x/0.75x/...); input (B, 3, H, W) ->
(B, 1280, H/32, W/32), or (B, 1280, H/16, W/16) with ``LAST_STRIDE 1``.

fastreid names the layers of each inverted residual block as one flat ``conv``
Sequential (conv, BN, ReLU6, conv, BN, ReLU6, conv, BN) and the last 1x1 layer ``conv``;
torchvision nests conv+BN+ReLU6 triples and calls the last layer ``features.18``. So
fastreid's loader cannot read torchvision's file (its first block's shapes differ and
it stops with a size mismatch); :func:`torchvision_to_fastreid` maps the names and
:func:`~reid_ext.modeling.backbones.pretrained.load_pretrained` checks every tensor.

Last stride: ReID backbones usually keep the resolution of the last stage (Luo et al.'s
"bag of tricks"); with ``MODEL.BACKBONE.LAST_STRIDE 1`` the depthwise convolution of the
last stride-2 block (the 160-channel stage) gets stride 1. The weights are unchanged.
"""
import logging
import re

from fastreid.modeling.backbones import BACKBONE_REGISTRY
from fastreid.modeling.backbones.mobilenet import MobileNetV2
from torch import nn

from .pretrained import load_pretrained

logger = logging.getLogger(__name__)

WIDTHS = {"1.0x": 1.0, "0.75x": 0.75, "0.5x": 0.5, "0.35x": 0.35, "0.25x": 0.25, "0.1x": 0.1}
_BLOCK_KEY = re.compile(r"features\.(\d+)\.conv\.(\d+)\.(?:(\d+)\.)?(\w+)$")


def torchvision_to_fastreid(keys):
    """{torchvision key: fastreid key} for the keys of a torchvision ``mobilenet_v2()``
    (or of its ``features``) state dict; the classifier is left out.

    In torchvision's block ``conv``, the first one or two entries are conv+BN+ReLU6
    triples (``conv.a.b``: conv b=0, BN b=1) and the rest are plain modules (the
    projection conv and its BN); fastreid spells them out, three slots per triple.
    """
    keys = list(keys)
    blocks = [int(m.group(1)) for m in map(re.compile(r"features\.(\d+)\.").match, keys) if m]
    if not blocks:
        return {}  # not a MobileNetV2 file: load_pretrained names the first missing tensor
    last = max(blocks)
    triples = {}  # block -> number of conv+BN+ReLU6 triples
    for k in keys:
        m = _BLOCK_KEY.match(k)
        if m and m.group(3) is not None:
            triples[m.group(1)] = max(triples.get(m.group(1), 0), int(m.group(2)) + 1)
    names = {}
    for k in keys:
        m = _BLOCK_KEY.match(k)
        if m:
            block, a, b, leaf = m.group(1), int(m.group(2)), m.group(3), m.group(4)
            n = triples[block]
            idx = 3 * a + int(b) if b is not None else 3 * n + (a - n)
            names[k] = f"features.{block}.conv.{idx}.{leaf}"
        elif k.startswith(f"features.{last}."):  # the final 1x1 conv+BN+ReLU6
            names[k] = "conv." + k[len(f"features.{last}."):]
        elif k.startswith("features.0."):  # the stem: same names
            names[k] = k
    return names


def set_last_stride(model, last_stride):
    """Give the depthwise conv of the last stride-2 block stride ``last_stride`` (1 or 2)."""
    if last_stride not in (1, 2):
        raise ValueError(f"MODEL.BACKBONE.LAST_STRIDE must be 1 or 2, got {last_stride}")
    strided = [m for m in model.features.modules()
               if isinstance(m, nn.Conv2d) and m.stride == (2, 2) and m.groups > 1]
    strided[-1].stride = (last_stride, last_stride)
    return model


@BACKBONE_REGISTRY.register()
def build_reid_mobilenetv2_backbone(cfg):
    """fastreid's MobileNetV2 (``MODEL.BACKBONE.{DEPTH,NORM,LAST_STRIDE}``) with the
    torchvision-layout ImageNet weights of ``MODEL.BACKBONE.PRETRAIN_PATH`` when
    ``MODEL.BACKBONE.PRETRAIN``; FEAT_DIM must be 1280 (the width of the last layer)."""
    bb = cfg.MODEL.BACKBONE
    if bb.DEPTH not in WIDTHS:
        raise ValueError(f"MODEL.BACKBONE.DEPTH for MobileNetV2 must be one of {list(WIDTHS)}, "
                         f"got {bb.DEPTH!r}")
    model = MobileNetV2(bb.NORM, WIDTHS[bb.DEPTH])
    if bb.FEAT_DIM != model.conv[0].out_channels:
        raise ValueError(f"MODEL.BACKBONE.FEAT_DIM is {bb.FEAT_DIM} but MobileNetV2 "
                         f"{bb.DEPTH} gives {model.conv[0].out_channels} channels")
    set_last_stride(model, bb.LAST_STRIDE)
    if bb.PRETRAIN:
        load_pretrained(model, bb.PRETRAIN_PATH, rename=torchvision_to_fastreid,
                        expect_unexpected=("classifier.",))
    return model
