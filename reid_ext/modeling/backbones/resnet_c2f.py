"""``build_resnet_c2f_backbone``: fastreid's ResNet with attention blocks inserted.

The ResNet is fastreid's own (``fastreid.modeling.backbones.resnet``, depth 18x/34x/50x/
101x, IBN-a, SE, last stride), built by fastreid's ``build_resnet_backbone`` (weights from a file checked by
``load_pretrained``) so that
pretrained weights load exactly as they do for the plain ResNet. Attention blocks are
then inserted the way fastreid inserts its non-local blocks: module lists ``NL_1..NL_4``
applied after the last ``LAYERS[i]`` blocks of stage i (indices ``NL_i_idx``), which
fastreid's ``ResNet.forward`` already walks. The attention parameters are new (their
names, ``NL_i.j.*``, do not occur in an ImageNet checkpoint) and every block is the
identity at initialisation, so the pretrained network's output is unchanged at step 0.

Config: ``MODEL.BACKBONE.ATTENTION.{TYPE, LAYERS, HEADS, PATCH_SIZE}`` (reid_ext/config/c2f.py).
"""
from fastreid.layers import Non_local
from fastreid.modeling.backbones import BACKBONE_REGISTRY
from torch import nn

from .c2f import C2FAttention, FullSelfAttention
from .resnet import build_checked_resnet

ATTENTION_TYPES = ("c2f", "full", "nonlocal", "none")
_STAGE_PLANES = (64, 128, 256, 512)


def make_attention_block(kind, channels, num_heads=8, patch_size=4, bn_norm="BN"):
    """One residual attention block of type ``kind`` (c2f | full | nonlocal) for ``channels``."""
    if kind == "c2f":
        return C2FAttention(channels, num_heads=num_heads, patch_size=patch_size, bn_norm=bn_norm)
    if kind == "full":
        return FullSelfAttention(channels, num_heads=num_heads, bn_norm=bn_norm)
    if kind == "nonlocal":
        return Non_local(channels, bn_norm)
    raise ValueError(f"MODEL.BACKBONE.ATTENTION.TYPE must be one of {ATTENTION_TYPES}, got {kind!r}")


def insert_attention(resnet, kind, layers, num_heads=8, patch_size=4, bn_norm="BN"):
    """Insert ``layers[i]`` attention blocks after the last blocks of stage i of a fastreid ResNet.

    resnet: ``fastreid.modeling.backbones.resnet.ResNet`` built without non-local blocks.
    Sets ``NL_{i}`` (nn.ModuleList) and ``NL_{i}_idx`` exactly like fastreid's
    ``_build_nonlocal`` but with the stage's real channel count. Returns ``resnet``.
    """
    layers = [int(n) for n in layers]
    if len(layers) != 4 or min(layers) < 0:
        raise ValueError(f"MODEL.BACKBONE.ATTENTION.LAYERS must be 4 non-negative counts "
                         f"(res2..res5), got {layers}")
    if kind not in ATTENTION_TYPES:
        raise ValueError(f"MODEL.BACKBONE.ATTENTION.TYPE must be one of {ATTENTION_TYPES}, got {kind!r}")
    if kind == "none":
        layers = [0, 0, 0, 0]
    for i, n in enumerate(layers, start=1):
        stage = getattr(resnet, f"layer{i}")
        if n > len(stage):
            raise ValueError(f"MODEL.BACKBONE.ATTENTION.LAYERS[{i - 1}]={n} exceeds the {len(stage)} "
                             f"blocks of stage layer{i} (res{i + 1})")
        channels = _STAGE_PLANES[i - 1] * type(stage[0]).expansion
        setattr(resnet, f"NL_{i}", nn.ModuleList(
            [make_attention_block(kind, channels, num_heads, patch_size, bn_norm) for _ in range(n)]))
        setattr(resnet, f"NL_{i}_idx", sorted(len(stage) - (j + 1) for j in range(n)))
    return resnet


@BACKBONE_REGISTRY.register()
def build_resnet_c2f_backbone(cfg):
    """fastreid ResNet (+ pretrained weights) with C2F / full / non-local attention blocks."""
    if cfg.MODEL.BACKBONE.WITH_NL:
        raise ValueError("build_resnet_c2f_backbone: MODEL.BACKBONE.WITH_NL must be False; "
                         "use MODEL.BACKBONE.ATTENTION.TYPE nonlocal for fastreid's non-local blocks")
    att = cfg.MODEL.BACKBONE.ATTENTION
    # fastreid's ResNet + checked weights; the attention blocks are new (built after loading)
    resnet = build_checked_resnet(cfg)
    return insert_attention(resnet, str(att.TYPE).lower(), list(att.LAYERS), int(att.HEADS),
                            int(att.PATCH_SIZE), cfg.MODEL.BACKBONE.NORM)
