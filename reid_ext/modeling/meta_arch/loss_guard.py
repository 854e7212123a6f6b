"""fastreid's own ``Baseline`` and ``MGN`` refuse loss names they would silently ignore.

``Baseline.losses()`` / ``MGN.losses()`` compute CrossEntropyLoss, TripletLoss, CircleLoss
and Cosface and skip every other name of ``MODEL.LOSSES.NAME`` without a word, so a
config with ``AdaSPLoss`` trains without it. Importing reid_ext makes the ``from_config``
of both classes (what ``fastreid.modeling.build_model`` and ``Baseline(cfg)`` call) run
:func:`check_loss_names` first: the model is not built, and the error names the
meta-architectures that compute the loss (``ReidBaseline``, ``ReidMGN``). fastreid's
files are not changed. Subclasses with their own ``losses()`` (ours, Distiller, MoCo, a
user's) are trusted and not checked.
"""
from fastreid.modeling.meta_arch import MGN, META_ARCH_REGISTRY, Baseline

from ...utils.errors import ConfigValueError
from ..losses.registry import FASTREID_LOSS_NAMES, registered_loss_names

_FASTREID_LOSSES = (Baseline.losses, MGN.losses)


def ignored_loss_names(arch_cls, loss_names):
    """The names of ``loss_names`` that ``arch_cls.losses()`` would ignore (only fastreid's
    own ``losses()`` is known to ignore names; other meta-architectures are trusted)."""
    if getattr(arch_cls, "losses", None) not in _FASTREID_LOSSES:
        return []
    return [n for n in loss_names if n not in FASTREID_LOSS_NAMES]


def check_loss_names(cfg, arch_cls=None):
    """Stop if the meta-architecture would silently ignore a name of MODEL.LOSSES.NAME."""
    arch_name = cfg.MODEL.META_ARCHITECTURE
    if arch_cls is None:
        arch_cls = META_ARCH_REGISTRY.get(arch_name)
    unknown = ignored_loss_names(arch_cls, cfg.MODEL.LOSSES.NAME)
    if unknown:
        raise ConfigValueError(
            f"MODEL.LOSSES.NAME has {unknown}, which MODEL.META_ARCHITECTURE='{arch_name}' "
            f"does not compute (fastreid would train silently without them). Use "
            f"MODEL.META_ARCHITECTURE 'ReidBaseline' (or 'ReidMGN' for MGN), which "
            f"knows: {', '.join(registered_loss_names())}")


def _guarded(from_config):
    def guarded_from_config(cls, cfg):
        check_loss_names(cfg, cls)
        return from_config(cls, cfg)
    guarded_from_config.__wrapped_from_config__ = from_config
    return classmethod(guarded_from_config)


def install():
    """Guard ``Baseline.from_config`` and ``MGN.from_config`` (idempotent)."""
    for cls in (Baseline, MGN):
        func = cls.__dict__["from_config"].__func__
        if not hasattr(func, "__wrapped_from_config__"):
            cls.from_config = _guarded(func)


install()
