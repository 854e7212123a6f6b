"""``SFTHead``: fastreid's EmbeddingHead with Spectral Feature Transformation in training.

Luo et al., "Spectral Feature Transformation for Person Re-identification", ICCV 2019.
Config: ``MODEL.HEADS.NAME: SFTHead`` and ``MODEL.HEADS.SFT.{ENABLED,SIGMA,DEEP_SUP}``.

Training (``MODEL.HEADS.SFT.ENABLED``):
- the pooled features X (B, C) are transformed, X' = SFT(X), *before* the neck;
- ``DEEP_SUP: True`` (official default): X and X' go through the same neck and
  classifier; the neck's BN sees the 2B rows together (as the official code's shared
  classifier does); the head returns ``{"views": [outputs(X), outputs(X')], ...}`` and
  :class:`reid_ext.modeling.meta_arch.ReidBaseline` averages the identity loss over the
  two views (equal weight on X and X', like the official single mean over 2B rows).
  Metric losses (triplet, AdaSP, circle...) see X only (``METRIC_VIEWS: original``): the
  official code's optional triplet acts on the untransformed feature, and X' rows of one
  identity are already pulled together by T, so a metric loss on X' mostly rewards the
  blur itself (measured in projects/SFT/README.md). ``METRIC_VIEWS: all`` averages
  them over both views as well; the X' view carries ``"metric_loss": False`` otherwise.
  The top-level keys are those of the original view, so code that ignores ``views``
  still sees a valid EmbeddingHead output (but fastreid's own ``Baseline`` ignores
  ``views`` and would train on X alone: use ``MODEL.META_ARCHITECTURE: ReidBaseline``);
- ``DEEP_SUP: False``: the neck, classifier and losses see X' only.
Every output dict has the keys EmbeddingHead returns (``cls_outputs``,
``pred_class_logits``, ``features``), so any loss of the registry (CE, triplet,
circle, cosface, AdaSP...) works on each view.

Inference (``not self.training``) or ``ENABLED: False``: exactly EmbeddingHead.forward.
SFT mixes the rows of the *per-device* batch (no cross-GPU gather), as the official
single-GPU code does; it needs several images per identity (PK sampling).
"""
import torch
import torch.nn.functional as F
from fastreid.config import configurable
from fastreid.modeling.heads import REID_HEADS_REGISTRY, EmbeddingHead

from ..sft import spectral_feature_transform


@REID_HEADS_REGISTRY.register()
class SFTHead(EmbeddingHead):
    @configurable
    def __init__(self, *, sft_enabled=True, sft_sigma=0.1, sft_deep_sup=True,
                 sft_metric_views="original", **kwargs):
        super().__init__(**kwargs)
        if not sft_sigma > 0:
            raise ValueError(f"MODEL.HEADS.SFT.SIGMA must be > 0, got {sft_sigma}")
        if sft_metric_views not in ("original", "all"):
            raise ValueError(f"MODEL.HEADS.SFT.METRIC_VIEWS must be 'original' or 'all', got "
                             f"{sft_metric_views!r}")
        self.sft_metric_views = sft_metric_views
        self.sft_enabled = bool(sft_enabled)
        self.sft_sigma = float(sft_sigma)
        self.sft_deep_sup = bool(sft_deep_sup)

    @classmethod
    def from_config(cls, cfg):
        kwargs = super().from_config(cfg)
        if "SFT" not in cfg.MODEL.HEADS:
            raise KeyError("MODEL.HEADS.SFT is missing: build the config with "
                           "reid_ext.config.get_cfg() (or add_reid_ext_config)")
        sft = cfg.MODEL.HEADS.SFT
        kwargs.update(sft_enabled=sft.ENABLED, sft_sigma=sft.SIGMA, sft_deep_sup=sft.DEEP_SUP,
                      sft_metric_views=sft.get("METRIC_VIEWS", "original"))
        return kwargs

    def extra_repr(self):
        return (f"sft_enabled={self.sft_enabled}, sigma={self.sft_sigma}, "
                f"deep_sup={self.sft_deep_sup}, metric_views={self.sft_metric_views}")

    def _classify(self, pool_feat, neck_feat, targets):
        """EmbeddingHead's training branch for one view: (N, C) pooled, (N, E) neck."""
        if self.cls_layer.__class__.__name__ == "Linear":
            logits = F.linear(neck_feat, self.weight)
        else:
            logits = F.linear(F.normalize(neck_feat), F.normalize(self.weight))
        cls_outputs = self.cls_layer(logits.clone(), targets)
        if self.neck_feat == "before":
            feat = pool_feat
        elif self.neck_feat == "after":
            feat = neck_feat
        else:
            raise KeyError(f"{self.neck_feat} is invalid for MODEL.HEADS.NECK_FEAT")
        return {"cls_outputs": cls_outputs, "pred_class_logits": logits.mul(self.cls_layer.s),
                "features": feat}

    def forward(self, features, targets=None):
        if not self.training or not self.sft_enabled:
            return super().forward(features, targets)
        if targets is None:
            raise ValueError("SFTHead in training mode needs targets")
        pool = self.pool_layer(features)  # (B, C, 1, 1)
        x = pool[..., 0, 0]
        x_sft = spectral_feature_transform(x, self.sft_sigma)
        if not self.sft_deep_sup:
            neck = self.bottleneck(x_sft[..., None, None])[..., 0, 0]
            return self._classify(x_sft, neck, targets)
        b = x.size(0)
        both = torch.cat([x, x_sft])  # (2B, C): one neck pass, its BN sees all 2B rows
        neck = self.bottleneck(both[..., None, None])[..., 0, 0]
        original = self._classify(x, neck[:b], targets)
        transformed = self._classify(x_sft, neck[b:], targets)
        transformed["metric_loss"] = self.sft_metric_views == "all"
        return dict(original, views=[original, transformed])
