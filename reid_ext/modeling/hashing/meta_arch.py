"""``SSRHashing``: the SSR meta-architecture (MODEL.META_ARCHITECTURE: SSRHashing).

fastreid ResNet backbone -> [attribute head on the pooled map -> AAB] -> global + 6-stripe
hash head -> h. Training: identity CE and batch-hard triplet on the relaxed code phi(h),
SSR L1 between phi(h) and the detached binary code, attribute BCE. Eval outputs:
``features`` (float: phi(h) or pooled backbone features, MODEL.HASH.FEATURES),
``hash_logits`` h, ``codes`` (bits h > 0, packed uint8), ``attr_logits`` and, when the
batch carries labels, ``attr_targets`` (for attribute accuracy).
"""
import torch
import torch.nn as nn
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.losses import cross_entropy_loss, log_accuracy, triplet_loss
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils.events import _CURRENT_STORAGE_STACK

from ...evaluation.hashing import pack_bits
from .core import attribute_bce, relax, split_bits, ssr_loss
from .modules import AttributeGuidedAttention, AttributeHead, HashHead


@META_ARCH_REGISTRY.register()
class SSRHashing(nn.Module):
    """``with_backbone=False`` builds only the part after the backbone (attribute head,
    AAB, hash head, classifier), to be fed a feature map by another model through
    :meth:`head_forward` (the SSR branch of ``CombinedReID``)."""

    def __init__(self, cfg, with_backbone=True):
        super().__init__()
        h, a = cfg.MODEL.HASH, cfg.MODEL.ATTR
        if with_backbone:
            self.backbone = build_backbone(cfg)
        channels = cfg.MODEL.BACKBONE.FEAT_DIM
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, -1, 1, 1),
                             False)
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(1, -1, 1, 1),
                             False)
        self.relaxation = h.RELAXATION
        relax(torch.zeros(1), self.relaxation)  # validates the key
        if h.FEATURES not in ("relaxed", "pooled"):
            raise ValueError(f"MODEL.HASH.FEATURES must be 'relaxed' or 'pooled', got "
                             f"{h.FEATURES!r}")
        self.eval_features = h.FEATURES
        glob, per = split_bits(h.BITS, h.NUM_STRIPES, h.STRIPE_BITS)
        self.hash_head = HashHead(channels, glob, h.NUM_STRIPES, per)
        self.attr_head = AttributeHead(channels, a.NUM) if a.ENABLED else None
        self.aab = (AttributeGuidedAttention(channels, a.NUM, a.AAB_REDUCTION)
                    if a.ENABLED and a.AAB else None)
        num_classes = cfg.MODEL.HEADS.NUM_CLASSES
        self.classifier = nn.Linear(self.hash_head.bits, num_classes, bias=False) \
            if num_classes > 0 else None
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.01)
        self.w = {"ce": h.CE_WEIGHT, "tri": h.TRI_WEIGHT, "ssr": h.SSR_WEIGHT, "attr": a.WEIGHT}
        self.ce_eps, self.margin = h.CE_EPSILON, h.TRI_MARGIN

    @property
    def device(self):
        return self.pixel_mean.device

    def preprocess_image(self, batched_inputs):
        images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"batched_inputs must be a dict or a Tensor, got {type(images)}")
        return (images.to(self.device, non_blocking=True) - self.pixel_mean) / self.pixel_std

    def forward(self, batched_inputs):
        return self.head_forward(self.backbone(self.preprocess_image(batched_inputs)),
                                 batched_inputs)

    def head_forward(self, feat, batched_inputs):
        """feat: (B, C, H, W) backbone map -> eval outputs dict, or the losses in training."""
        pooled = feat.mean(dim=(2, 3))
        attr_logits = self.attr_head(pooled) if self.attr_head is not None else None
        if self.aab is not None:
            # attribute probabilities guide the attention; identity gradients do not
            # flow back into the attribute classifiers
            feat = self.aab(feat, torch.sigmoid(attr_logits).detach())
        h = self.hash_head(feat)  # (B, K)
        r = relax(h, self.relaxation)
        if not self.training:
            out = {"features": r if self.eval_features == "relaxed" else pooled,
                   "hash_logits": h, "codes": pack_bits(h > 0)}
            if attr_logits is not None:
                out["attr_logits"] = attr_logits
                if isinstance(batched_inputs, dict) and "attributes" in batched_inputs:
                    out["attr_targets"] = batched_inputs["attributes"].to(h.device).float()
            return out
        if not isinstance(batched_inputs, dict) or "targets" not in batched_inputs:
            raise KeyError("SSRHashing needs batched_inputs['targets'] in training")
        targets = batched_inputs["targets"].to(self.device)
        return self.losses(h, r, attr_logits, targets, batched_inputs)

    def losses(self, h, r, attr_logits, targets, batched_inputs):
        if self.classifier is None:
            raise ValueError("MODEL.HEADS.NUM_CLASSES is 0: the trainer sets it from the "
                             "training set; set it when building SSRHashing for training")
        out = {}
        # the relaxed code feeds the classifier (as light-reid's hash head does)
        logits = self.classifier(r)
        if _CURRENT_STORAGE_STACK:
            log_accuracy(logits.detach(), targets)
        if self.w["ce"]:
            out["loss_cls"] = cross_entropy_loss(logits, targets, self.ce_eps, 0.2) * self.w["ce"]
        if self.w["tri"]:
            out["loss_triplet"] = triplet_loss(r, targets, self.margin, True, True) * self.w["tri"]
        if self.w["ssr"]:
            out["loss_ssr"] = ssr_loss(h, self.relaxation) * self.w["ssr"]
        if attr_logits is not None and self.w["attr"]:
            if "attributes" not in batched_inputs:
                raise KeyError("MODEL.ATTR.ENABLED is True but the batch has no 'attributes'; "
                               "the dataset's attribute file was not attached (see "
                               "reid_ext.data.attributes)")
            out["loss_attr"] = attribute_bce(attr_logits, batched_inputs["attributes"].to(
                attr_logits.device).float()) * self.w["attr"]
        return out
