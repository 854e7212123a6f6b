"""A loss registry: fastreid has none, and its ``Baseline.losses()`` silently drops
loss names it does not know. Every name in ``MODEL.LOSSES.NAME`` must be found here
by :class:`reid_ext.modeling.meta_arch.ReidBaseline`, or model building stops.

A registered loss is ``fn(outputs, targets, loss_cfg) -> {loss_key: scalar tensor}``:
``outputs`` is the head's training dict (``features`` (B, D), ``cls_outputs`` (B, C),
``pred_class_logits`` (B, C)), ``targets`` (B,) int64, ``loss_cfg`` the
``cfg.MODEL.LOSSES`` node. The returned terms are already multiplied by their SCALE.
"""
from fastreid.modeling.losses import (cross_entropy_loss, pairwise_circleloss,
                                      pairwise_cosface, triplet_loss)
from fastreid.utils.registry import Registry

from ...utils.errors import ConfigKeyError

LOSS_REGISTRY = Registry("REID_EXT_LOSSES")

# What fastreid's own Baseline.losses() understands; anything else it ignores silently.
FASTREID_LOSS_NAMES = ("CrossEntropyLoss", "TripletLoss", "CircleLoss", "Cosface")


def registered_loss_names():
    return sorted(LOSS_REGISTRY._obj_map)


def get_loss(name):
    if name not in LOSS_REGISTRY._obj_map:
        raise ConfigKeyError(f"unknown loss '{name}' in MODEL.LOSSES.NAME; "
                       f"known losses: {', '.join(registered_loss_names())}")
    return LOSS_REGISTRY.get(name)


@LOSS_REGISTRY.register()
def CrossEntropyLoss(outputs, targets, c):
    loss = cross_entropy_loss(outputs["cls_outputs"], targets, c.CE.EPSILON, c.CE.ALPHA)
    return {"loss_cls": loss * c.CE.SCALE}


@LOSS_REGISTRY.register()
def TripletLoss(outputs, targets, c):
    loss = triplet_loss(outputs["features"], targets, c.TRI.MARGIN, c.TRI.NORM_FEAT,
                        c.TRI.HARD_MINING)
    return {"loss_triplet": loss * c.TRI.SCALE}


@LOSS_REGISTRY.register()
def CircleLoss(outputs, targets, c):
    loss = pairwise_circleloss(outputs["features"], targets, c.CIRCLE.MARGIN, c.CIRCLE.GAMMA)
    return {"loss_circle": loss * c.CIRCLE.SCALE}


@LOSS_REGISTRY.register()
def Cosface(outputs, targets, c):
    loss = pairwise_cosface(outputs["features"], targets, c.COSFACE.MARGIN, c.COSFACE.GAMMA)
    return {"loss_cosface": loss * c.COSFACE.SCALE}
