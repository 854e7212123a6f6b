"""``ReidBaseline``: fastreid's Baseline whose losses come from the loss registry.

Differences from ``fastreid.modeling.meta_arch.Baseline``:
- every name of ``MODEL.LOSSES.NAME`` is looked up in ``LOSS_REGISTRY``; an unknown
  name stops model building (fastreid ignores it without a word);
- a head may return ``outputs["views"]``, a list of output dicts (e.g. the original
  and the SFT-transformed features): the classifier losses are averaged over the
  views, the other (metric) losses over the views that do not carry
  ``"metric_loss": False``;
- images are normalised out of place, so the flip test no longer normalises twice.
"""
import torch
from fastreid.modeling.losses import log_accuracy
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY, Baseline
from fastreid.utils.events import _CURRENT_STORAGE_STACK

from ..heads.embedding_head import CLASSIFIER_LOSSES
from ..losses.registry import get_loss


def registry_loss_kwargs(cfg):
    """``loss_kwargs`` of a registry-backed meta-arch; unknown names fail here, early."""
    names = tuple(cfg.MODEL.LOSSES.NAME)
    for name in names:
        get_loss(name)
    return {"loss_names": names, "cfg": cfg.MODEL.LOSSES.clone()}


def normalise_images(batched_inputs, mean, std):
    """(B, 3, H, W) images (or a dict holding them) -> normalised on mean's device,
    out of place (fastreid normalises in place, so a flipped copy is normalised twice)."""
    images = batched_inputs["images"] if isinstance(batched_inputs, dict) else batched_inputs
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"batched_inputs must be a dict or a Tensor, got {type(images)}")
    return (images.to(mean.device, non_blocking=True) - mean) / std


@META_ARCH_REGISTRY.register()
class ReidBaseline(Baseline):
    @classmethod
    def from_config(cls, cfg):
        return {**super().from_config(cfg), "loss_kwargs": registry_loss_kwargs(cfg)}

    def preprocess_image(self, batched_inputs):
        return normalise_images(batched_inputs, self.pixel_mean, self.pixel_std)

    def losses(self, outputs, gt_labels):
        views = outputs.get("views", [outputs])
        if _CURRENT_STORAGE_STACK and "pred_class_logits" in views[0]:
            log_accuracy(views[0]["pred_class_logits"].detach(), gt_labels)
        loss_cfg = self.loss_kwargs["cfg"]
        metric_views = [v for v in views if v.get("metric_loss", True)]
        total = {}
        for name in self.loss_kwargs["loss_names"]:
            seen = views if name in CLASSIFIER_LOSSES else metric_views
            for view in seen:
                for key, value in get_loss(name)(view, gt_labels, loss_cfg).items():
                    total[key] = total.get(key, 0) + value / len(seen)
        return total
