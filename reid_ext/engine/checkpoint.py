"""``ReidCheckpointer``: fastreid's Checkpointer that stops on a weights file that does not fit.

fastreid's ``Checkpointer.load`` asserts the file exists, fails with ``KeyError: 'model'``
on ImageNet backbone weights, and *skips* every tensor whose shape differs from the model's
with a warning, so a checkpoint of another architecture loads "successfully" and the run
goes on with random weights. Here each of these is one :class:`WeightsError` naming the
file and the first offending tensors. What still loads with fastreid's warning: tensors
that differ only in their first dimension (a classifier trained with another number of
classes, the usual fine-tuning case) and, unless ``strict``, parameters the file lacks
(e.g. the NFormer of stage 2 when loading the stage-1 encoder). ``strict`` (used by
``--eval-only``) also refuses missing parameters: evaluating them random is never intended.
"""
import os
import pickle

from fastreid.utils.checkpoint import Checkpointer

from ..utils.errors import WeightsError


def _shapes(items, n=5):
    text = ", ".join(f"{k}: {tuple(a)} in the file, {tuple(b)} in the model"
                     for k, a, b in items[:n])
    return text + (f" (and {len(items) - n} more)" if len(items) > n else "")


class ReidCheckpointer(Checkpointer):
    def __init__(self, model, save_dir="", *, save_to_disk=True, strict=False, **checkpointables):
        super().__init__(model, save_dir, save_to_disk=save_to_disk, **checkpointables)
        self.strict = strict
        self._path = None

    def load(self, path, checkpointables=None):
        if path and not os.path.isfile(path):
            raise WeightsError(f"weights file not found: {path} (MODEL.WEIGHTS, or the "
                               f"last_checkpoint of OUTPUT_DIR with --resume)")
        self._path = path
        return super().load(path, checkpointables)

    def _load_file(self, f):
        try:
            ckpt = super()._load_file(f)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as e:
            raise WeightsError(f"{f} is not a checkpoint torch.load can read: "
                               f"{str(e).strip().splitlines()[0] if str(e).strip() else e!r}") \
                from None
        if not isinstance(ckpt, dict) or "model" not in ckpt:
            keys = list(ckpt)[:5] if isinstance(ckpt, dict) else type(ckpt).__name__
            raise WeightsError(
                f"{f} is not a fastreid checkpoint (no 'model' entry; it holds {keys}). "
                f"ImageNet backbone weights go to MODEL.BACKBONE.PRETRAIN_PATH with "
                f"MODEL.BACKBONE.PRETRAIN True, not to MODEL.WEIGHTS")
        return ckpt

    def _load_model(self, checkpoint):
        n_model = len(self.model.state_dict())
        in_file = list(checkpoint.get("model", {}))[:5]
        incompatible = super()._load_model(checkpoint)
        path = self._path or "the checkpoint"
        bad = [(k, a, b) for k, a, b in incompatible.incorrect_shapes
               if len(a) != len(b) or tuple(a[1:]) != tuple(b[1:])]
        if bad:
            raise WeightsError(f"{path} does not fit the model (another MODEL.BACKBONE / "
                               f"MODEL.HEADS / MODEL.META_ARCHITECTURE?): {_shapes(bad)}")
        resized = {k for k, _, _ in incompatible.incorrect_shapes}  # classifiers, see above
        missing = [k for k in incompatible.missing_keys
                   if not k.endswith("num_batches_tracked") and k not in resized]
        if n_model and len(incompatible.missing_keys) >= n_model:
            raise WeightsError(f"no tensor of {path} matches the model: the model has "
                               f"{missing[:3]}..., the file {in_file or 'nothing'}...")
        if self.strict and missing:
            raise WeightsError(f"{path} lacks {len(missing)} tensors of the model: "
                               f"{missing[:5]}{'...' if len(missing) > 5 else ''}")
        return incompatible
