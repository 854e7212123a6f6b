"""``NFormerBaseline``: a ReidBaseline encoder with an NFormer attached (stage 2 of NFormer).

The NFormer weights live in the ``nformer`` submodule, so one checkpoint holds the encoder
and the NFormer; the evaluation variant (``TEST.NFORMER.ENABLED``) finds them there.

- eval: ``forward(batch)`` returns the encoder features, like ReidBaseline (the NFormer is
  applied by the evaluation variant over all query + gallery features at once);
- training on images: the encoder losses of ReidBaseline (stage 1 can use this model too);
- training on sequences (``{"nformer_feats": (B, L, d), "nformer_targets": (B, L)}``, as
  fed by :class:`reid_ext.engine.nformer.NFormerTrainer`): the NFormer losses, label-
  smoothed CE on the NFormer logits + batch-hard triplet on the pre-BN output over all
  B*L tokens (official stage-2 losses, without its centre loss).
"""
from fastreid.config import configurable
from fastreid.modeling.losses import cross_entropy_loss, log_accuracy, triplet_loss
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from fastreid.utils.events import _CURRENT_STORAGE_STACK

from ..meta_arch.baseline import ReidBaseline
from .model import NFormer

__all__ = ["NFormerBaseline", "nformer_sequence_losses"]


def nformer_sequence_losses(outputs, targets, ce_epsilon=0.1, tri_margin=0.3):
    """outputs: ``NFormer.forward_train`` dict over (B, L, d); targets (B, L) int64.
    -> {"loss_nformer_cls", "loss_nformer_triplet"} scalars."""
    feats = outputs["features"].reshape(-1, outputs["features"].size(-1))
    targets = targets.reshape(-1)
    losses = {}
    if outputs["logits"] is not None:
        logits = outputs["logits"].reshape(feats.size(0), -1)
        if _CURRENT_STORAGE_STACK:
            log_accuracy(logits.detach(), targets)
        losses["loss_nformer_cls"] = cross_entropy_loss(logits, targets, ce_epsilon)
    if tri_margin is not None:
        losses["loss_nformer_triplet"] = triplet_loss(feats, targets, tri_margin, False, True)
    return losses


@META_ARCH_REGISTRY.register()
class NFormerBaseline(ReidBaseline):
    @configurable
    def __init__(self, *, nformer, nformer_loss_kwargs, **kwargs):
        super().__init__(**kwargs)
        self.nformer = nformer
        self.nformer_loss_kwargs = nformer_loss_kwargs

    @classmethod
    def from_config(cls, cfg):
        kwargs = super().from_config(cfg)
        feat_dim = cfg.MODEL.HEADS.EMBEDDING_DIM or cfg.MODEL.BACKBONE.FEAT_DIM
        nf = cfg.MODEL.NFORMER
        in_dim = nf.get("INPUT_DIM", 0) or nf.DIM
        if feat_dim != in_dim:
            key = "INPUT_DIM" if nf.get("INPUT_DIM", 0) else "DIM"
            raise ValueError(f"MODEL.NFORMER.{key}={in_dim} must equal the encoder feature "
                             f"size {feat_dim} (MODEL.HEADS.EMBEDDING_DIM, else "
                             f"MODEL.BACKBONE.FEAT_DIM); set MODEL.NFORMER.INPUT_DIM to it "
                             f"to project it to DIM")
        kwargs["nformer"] = NFormer.from_config(cfg, num_classes=cfg.MODEL.HEADS.NUM_CLASSES)
        kwargs["nformer_loss_kwargs"] = {"ce_epsilon": cfg.SOLVER.NFORMER.CE_EPSILON,
                                         "tri_margin": cfg.SOLVER.NFORMER.TRI_MARGIN}
        return kwargs

    def forward(self, batched_inputs):
        if self.training and isinstance(batched_inputs, dict) and "nformer_feats" in batched_inputs:
            x = batched_inputs["nformer_feats"].to(self.pixel_mean.device)
            y = batched_inputs["nformer_targets"].to(self.pixel_mean.device)
            return nformer_sequence_losses(self.nformer.forward_train(x), y,
                                           **self.nformer_loss_kwargs)
        return super().forward(batched_inputs)
