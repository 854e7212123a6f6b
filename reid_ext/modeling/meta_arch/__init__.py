"""Registered meta-architectures; fastreid's Baseline/MGN refuse loss names they ignore."""
from .baseline import ReidBaseline  # noqa: F401
from .loss_guard import check_loss_names  # noqa: F401  (guards fastreid's Baseline and MGN)
from .mgn import ReidMGN  # noqa: F401  (issue 3: MGN with registry losses, e.g. AdaSP)
