"""Losses: the registry and reid_ext's own losses (each registers itself)."""
from .registry import (FASTREID_LOSS_NAMES, LOSS_REGISTRY, get_loss,  # noqa: F401
                       registered_loss_names)
from .adasp import AdaSP, AdaSPLoss, adasp_loss  # noqa: F401  (issue 3: AdaSP)
