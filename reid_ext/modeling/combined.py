"""``CombinedReID``: the five methods in one model (``projects/Combined``).

An encoder built like :class:`ReidBaseline` from the config (e.g. the C2F backbone, the
SFT head, CE + AdaSP losses), an NFormer (``.nformer``, trained in stage 2 by
``NFormerTrainer``; applied at test by the ``NFormer`` evaluation variant) and the SSR
hash branch (:class:`SSRHashing` without its own backbone: attribute head, AAB, global +
stripe hash head) on the same backbone map.

- training on images: the encoder losses plus the SSR branch losses, renamed
  ``loss_hash_*`` (``loss_hash_cls``, ``loss_hash_triplet``, ``loss_hash_ssr``,
  ``loss_hash_attr``; weights ``MODEL.HASH.*_WEIGHT``, ``MODEL.ATTR.WEIGHT``);
- training on NFormer sequences: the NFormer losses (stage 2, encoder frozen);
- eval: ``{"features": (B, D) head features, "codes": (B, BITS/8) packed bits,
  "hash_logits": (B, BITS), "attr_logits": (B, A), ...}``, so the plain ranking, LBR and
  NFormer use the features and the ``ssr_hashing`` variant the codes.
"""
from fastreid.config import configurable
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY

from .hashing import SSRHashing
from .nformer import NFormerBaseline

__all__ = ["CombinedReID"]


@META_ARCH_REGISTRY.register()
class CombinedReID(NFormerBaseline):
    @configurable
    def __init__(self, *, hash_branch, **kwargs):
        super().__init__(**kwargs)
        self.hash_branch = hash_branch

    @classmethod
    def from_config(cls, cfg):
        return {**super().from_config(cfg), "hash_branch": SSRHashing(cfg, with_backbone=False)}

    def forward(self, batched_inputs):
        if self.training and isinstance(batched_inputs, dict) and "nformer_feats" in batched_inputs:
            return super().forward(batched_inputs)
        feat = self.backbone(self.preprocess_image(batched_inputs))
        if not self.training:
            out = self.hash_branch.head_forward(feat, batched_inputs)
            out["features"] = self.heads(feat)
            return out
        if not isinstance(batched_inputs, dict) or "targets" not in batched_inputs:
            raise KeyError("CombinedReID needs batched_inputs['targets'] in training")
        targets = batched_inputs["targets"].to(self.pixel_mean.device)
        losses = self.losses(self.heads(feat, targets), targets)
        for name, value in self.hash_branch.head_forward(feat, batched_inputs).items():
            losses["loss_hash_" + name[len("loss_"):]] = value
        return losses
