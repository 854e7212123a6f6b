"""``ReidEmbeddingHead``: fastreid's EmbeddingHead whose classifier can be left out.

The official AdaSP repository adds ``MODEL.HEADS.CLS_ENABLE`` to fastreid's
EmbeddingHead for its metric-only ("single") vehicle configs. reid_ext does not change
fastreid's files, so the key is honoured by this registered head instead
(``MODEL.HEADS.NAME: ReidEmbeddingHead``); with ``CLS_ENABLE: True`` it is exactly
EmbeddingHead.

``CLS_ENABLE: False``: no classifier weight is built (no parameters, no weight decay, no
``NUM_CLASSES`` needed) and the training output is ``{"features": (B, D)}`` only, so
``ReidBaseline`` / ``ReidMGN`` skip the accuracy log. Naming "CrossEntropyLoss" in
``MODEL.LOSSES.NAME`` with the classifier off is refused at build time. Inference is
unchanged (the neck feature). fastreid's own ``EmbeddingHead`` ignores ``CLS_ENABLE``:
its classifier is then built but, without CE, receives no gradient.
"""
from fastreid.config import configurable
from fastreid.layers.weight_init import weights_init_kaiming
from fastreid.modeling.heads import REID_HEADS_REGISTRY, EmbeddingHead

# losses that read the classifier outputs ("cls_outputs" / "pred_class_logits")
CLASSIFIER_LOSSES = ("CrossEntropyLoss",)


@REID_HEADS_REGISTRY.register()
class ReidEmbeddingHead(EmbeddingHead):
    @configurable
    def __init__(self, *, cls_enable=True, **kwargs):
        super().__init__(**kwargs)
        self.cls_enable = bool(cls_enable)
        if not self.cls_enable:
            del self.weight
            self.cls_layer = None

    @classmethod
    def from_config(cls, cfg):
        kwargs = super().from_config(cfg)
        if "CLS_ENABLE" not in cfg.MODEL.HEADS:
            raise KeyError("MODEL.HEADS.CLS_ENABLE is missing: build the config with "
                           "reid_ext.config.get_cfg() (or add_reid_ext_config)")
        enable = cfg.MODEL.HEADS.CLS_ENABLE
        wanted = [n for n in cfg.MODEL.LOSSES.NAME if n in CLASSIFIER_LOSSES]
        if not enable and wanted:
            raise ValueError(f"MODEL.LOSSES.NAME has {wanted}, which needs the classifier, but "
                             f"MODEL.HEADS.CLS_ENABLE is False")
        kwargs["cls_enable"] = enable
        return kwargs

    def reset_parameters(self):
        if getattr(self, "weight", None) is not None:
            super().reset_parameters()
        else:
            self.bottleneck.apply(weights_init_kaiming)

    def extra_repr(self):
        return f"cls_enable={self.cls_enable}"

    def forward(self, features, targets=None):
        if self.cls_enable or not self.training:
            return super().forward(features, targets)
        pool_feat = self.pool_layer(features)
        neck_feat = self.bottleneck(pool_feat)[..., 0, 0]  # always: BN running stats for test
        if self.neck_feat == "before":
            feat = pool_feat[..., 0, 0]
        elif self.neck_feat == "after":
            feat = neck_feat
        else:
            raise KeyError(f"{self.neck_feat} is invalid for MODEL.HEADS.NECK_FEAT")
        return {"features": feat}
