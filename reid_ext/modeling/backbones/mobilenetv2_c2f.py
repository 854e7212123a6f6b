"""``build_mobilenetv2_c2f_backbone``: the ImageNet MobileNetV2 of
:func:`build_reid_mobilenetv2_backbone` with C2F / full / non-local attention blocks.

C2F: Zhang et al., coarse-to-fine sparse self-attention for vehicle ReID (KBS 2023);
the blocks are those of :mod:`reid_ext.modeling.backbones.c2f`. The placement follows
``MODEL.BACKBONE.ATTENTION.LAYERS`` as for ResNet, counted on the stages of equal
output stride: ``LAYERS[i]`` blocks after the last ``LAYERS[i]`` inverted residual
blocks of the stride-4, 8, 16 and 32 stages (ResNet's res2..res5; at 128x64 input the
maps are 32x16, 16x8, 8x4 and 4x2). Each attention block gets the channel count of the
block it follows. The ImageNet weights are loaded *before* the blocks are inserted, and
every block is the identity at initialisation, so the network's output at step 0 is the
pretrained one. Input (B, 3, H, W) -> (B, 1280, H/32, W/32) (``LAST_STRIDE 1``: /16).

A block with attention becomes ``nn.Sequential(block, attention)``: the state dict keys
of those blocks gain a ``.0`` (``features.6.0.conv...``, ``features.6.1.qkv...``).
"""
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from torch import nn

from .mobilenetv2 import build_reid_mobilenetv2_backbone
from .resnet_c2f import ATTENTION_TYPES, make_attention_block


# indices of ``features`` by output stride of the MobileNetV2 design (any width; the
# stem and the stride-2 block 1 are left out): stride 4, 8, 16 (64 + 96 ch), 32 (160 + 320)
STRIDE_STAGES = ((2, 3), (4, 5, 6), tuple(range(7, 14)), tuple(range(14, 18)))


def _out_channels(block):
    return [m for m in block.modules() if isinstance(m, nn.Conv2d)][-1].out_channels


def insert_mobilenet_attention(model, kind, layers, num_heads=8, patch_size=4, bn_norm="BN"):
    """Put ``layers[i]`` attention blocks after the last blocks of stride stage i."""
    layers = [int(n) for n in layers]
    if len(layers) != 4 or min(layers) < 0:
        raise ValueError(f"MODEL.BACKBONE.ATTENTION.LAYERS must be 4 non-negative counts "
                         f"(stride-4, 8, 16, 32 stages), got {layers}")
    if kind not in ATTENTION_TYPES:
        raise ValueError(f"MODEL.BACKBONE.ATTENTION.TYPE must be one of {ATTENTION_TYPES}, "
                         f"got {kind!r}")
    if kind == "none":
        return model
    for i, (n, stage) in enumerate(zip(layers, STRIDE_STAGES)):
        if n > len(stage):
            raise ValueError(f"MODEL.BACKBONE.ATTENTION.LAYERS[{i}]={n} exceeds the {len(stage)} "
                             f"blocks of the stride-{4 << i} stage of MobileNetV2")
        for j in stage[len(stage) - n:]:
            block = model.features[j]
            att = make_attention_block(kind, _out_channels(block), num_heads, patch_size, bn_norm)
            model.features[j] = nn.Sequential(block, att)
    return model


@BACKBONE_REGISTRY.register()
def build_mobilenetv2_c2f_backbone(cfg):
    """MobileNetV2 (+ checked ImageNet weights) with ``MODEL.BACKBONE.ATTENTION`` blocks."""
    model = build_reid_mobilenetv2_backbone(cfg)
    att = cfg.MODEL.BACKBONE.ATTENTION
    return insert_mobilenet_attention(model, str(att.TYPE).lower(), list(att.LAYERS),
                                      int(att.HEADS), int(att.PATCH_SIZE), cfg.MODEL.BACKBONE.NORM)
