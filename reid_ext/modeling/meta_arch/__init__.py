"""Registered meta-architectures."""
from .baseline import ReidBaseline  # noqa: F401
from .mgn import ReidMGN  # noqa: F401  (issue 3: MGN with registry losses, e.g. AdaSP)
