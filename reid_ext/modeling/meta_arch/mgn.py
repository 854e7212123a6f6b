"""``ReidMGN``: fastreid's MGN whose losses come from reid_ext's loss registry.

fastreid's ``MGN.losses()`` computes only CE / triplet / circle / cosface and silently
ignores any other name of ``MODEL.LOSSES.NAME``. ``ReidMGN`` looks every name up in
``LOSS_REGISTRY`` (unknown names stop model building) and applies the MGN weighting of
fastreid and of the official AdaSP code (Astaxanthin/AdaSP):

- classification losses (``CrossEntropyLoss``) on each of the 8 heads, x 1/8 each, keys
  ``<key>_b1, _b2, _b21, _b22, _b3, _b31, _b32, _b33`` (e.g. ``loss_cls_b21``);
- every other (metric) loss on 5 features, x 1/5 each: b1, b2, b3 (global branches),
  b22 = concat(b21, b22) and b33 = concat(b31, b32, b33), keys ``<key>_b1, _b2, _b3,
  _b22, _b33`` (e.g. ``loss_adasp_b22``, ``loss_triplet_b33``). A metric loss sees
  ``{"features": (B, D_branch)}`` only.

Heads may have the classifier disabled (``MODEL.HEADS.NAME: ReidEmbeddingHead`` with
``CLS_ENABLE: False``); the accuracy is then not logged. Images are normalised out of
place (fastreid's MGN normalises the input batch in place). Inference is fastreid's: the
8 neck features concatenated.
"""
import torch
from fastreid.modeling.losses import log_accuracy
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY, MGN
from fastreid.utils.events import _CURRENT_STORAGE_STACK

from ..heads.embedding_head import CLASSIFIER_LOSSES
from ..losses.registry import get_loss
from .baseline import normalise_images, registry_loss_kwargs

HEAD_BRANCHES = ("b1", "b2", "b21", "b22", "b3", "b31", "b32", "b33")
FEATURE_BRANCHES = ("b1", "b2", "b3", "b22", "b33")


@META_ARCH_REGISTRY.register()
class ReidMGN(MGN):
    @classmethod
    def from_config(cls, cfg):
        return {**super().from_config(cfg), "loss_kwargs": registry_loss_kwargs(cfg)}

    def preprocess_image(self, batched_inputs):
        return normalise_images(batched_inputs, self.pixel_mean, self.pixel_std)

    def losses(self, b1_outputs, b2_outputs, b21_outputs, b22_outputs,
               b3_outputs, b31_outputs, b32_outputs, b33_outputs, gt_labels):
        heads = dict(zip(HEAD_BRANCHES, (b1_outputs, b2_outputs, b21_outputs, b22_outputs,
                                         b3_outputs, b31_outputs, b32_outputs, b33_outputs)))
        if _CURRENT_STORAGE_STACK and "pred_class_logits" in b1_outputs:
            log_accuracy(b1_outputs["pred_class_logits"].detach(), gt_labels)
        feats = {b: {"features": heads[b]["features"]} for b in ("b1", "b2", "b3")}
        feats["b22"] = {"features": torch.cat([heads["b21"]["features"],
                                               heads["b22"]["features"]], dim=1)}
        feats["b33"] = {"features": torch.cat([heads["b31"]["features"], heads["b32"]["features"],
                                               heads["b33"]["features"]], dim=1)}
        loss_cfg = self.loss_kwargs["cfg"]
        loss_dict = {}
        for name in self.loss_kwargs["loss_names"]:
            fn = get_loss(name)
            groups = heads if name in CLASSIFIER_LOSSES else feats
            for branch, outputs in groups.items():
                try:
                    terms = fn(outputs, gt_labels, loss_cfg)
                except KeyError as e:
                    raise KeyError(f"loss '{name}' (MODEL.LOSSES.NAME) needs head output {e}, "
                                   f"which ReidMGN's branch '{branch}' does not provide "
                                   f"(keys: {sorted(outputs)})") from None
                for key, value in terms.items():
                    loss_dict[f"{key}_{branch}"] = value / len(groups)
        return loss_dict
