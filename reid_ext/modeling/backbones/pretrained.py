"""Loading ImageNet weights from a file into a backbone, checked and logged.

fastreid's backbones load ``MODEL.BACKBONE.PRETRAIN_PATH`` with ``strict=False`` and only
log what did not match, so a file of another architecture (or another layout) leaves the
network at its random start without an error. :func:`load_pretrained` instead

- reads a plain state dict (or one under ``"state_dict"`` / ``"model"``), renaming the
  file's keys to the model's with ``rename`` (e.g. torchvision's MobileNetV2 layout to
  fastreid's);
- refuses, naming the file and the first key at fault, a tensor whose shape differs from
  the model's, and a model tensor the file does not have (unless ``allow_missing(name)``
  says it is new, e.g. attention blocks inserted after ImageNet training);
- logs how many tensors were loaded and lists the missing and unexpected keys (a
  classifier such as torchvision's ``fc.*`` is expected to be unexpected).
"""
import logging
import os

import torch

from ...utils.errors import MissingFileError, WeightsError

logger = logging.getLogger(__name__)


class PretrainedWeightsError(WeightsError):
    """A weights file that does not fit the backbone it is loaded into."""


def read_state_dict(path):
    """{name: tensor} of a weights file; errors name the file."""
    if not path:
        raise PretrainedWeightsError(
            "MODEL.BACKBONE.PRETRAIN is True but MODEL.BACKBONE.PRETRAIN_PATH is empty; "
            "give the ImageNet weights file (or set MODEL.BACKBONE.PRETRAIN False)")
    if not os.path.isfile(path):
        raise MissingFileError(f"MODEL.BACKBONE.PRETRAIN_PATH: weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle / zip errors have many types
        raise PretrainedWeightsError(f"cannot read weights file {path}: {e}") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedWeightsError(f"weights file {path} does not hold a state dict of tensors")
    return obj


def load_pretrained(model, path, rename=None, allow_missing=None, expect_unexpected=()):
    """Load the weights file ``path`` into ``model`` (in place); returns the loaded names.

    rename: ``fn(file_keys) -> {file_key: model_key}`` (keys it leaves out are unused);
    identity by default.
    allow_missing: ``fn(model_key) -> bool``, True for tensors the file cannot have.
    expect_unexpected: prefixes of file keys that are normal to leave out (classifiers).
    """
    source = read_state_dict(path)
    own = model.state_dict()
    names = rename(list(source)) if rename else {k: k for k in source}
    renamed, unexpected = {}, []
    for key, tensor in source.items():
        name = names.get(key)
        if name is None or name not in own:
            unexpected.append(key)
            continue
        if tuple(tensor.shape) != tuple(own[name].shape):
            raise PretrainedWeightsError(
                f"weights file {path} does not fit {type(model).__name__}: its tensor '{key}' "
                f"has shape {tuple(tensor.shape)}, the model's '{name}' has "
                f"{tuple(own[name].shape)} (another architecture or depth?)")
        renamed[name] = tensor
    missing = [k for k in own if k not in renamed]
    fatal = [k for k in missing if not (allow_missing and allow_missing(k))]
    if fatal:
        raise PretrainedWeightsError(
            f"weights file {path} does not fit {type(model).__name__}: it has no tensor for "
            f"'{fatal[0]}' ({len(fatal)} of {len(own)} model tensors missing, "
            f"{len(renamed)} matched; another architecture or layout?)")
    model.load_state_dict(renamed, strict=False)
    odd = [k for k in unexpected if not k.startswith(tuple(expect_unexpected))]
    logger.info("Loaded %d of %d tensors of %s from %s", len(renamed), len(own),
                type(model).__name__, path)
    if missing:
        logger.info("Not in the file (new, left at initialisation): %d tensors: %s",
                    len(missing), _short(missing))
    if unexpected:
        logger.info("In the file but not used: %d tensors: %s%s", len(unexpected),
                    _short(unexpected), "" if odd else " (classifier, as expected)")
    return list(renamed)


def _short(keys, n=8):
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n})" if len(keys) > n else "")
