"""reid_ext: five recent ReID methods as drop-in fastreid components.

``import reid_ext`` makes fastreid 1.4.0 importable on today's stack (see
:mod:`reid_ext.compat`) and registers every reid_ext backbone, head, meta-architecture,
dataset and evaluation variant in fastreid's registries. No fastreid file is changed.
"""
from . import compat

compat.apply()

from . import config, data, evaluation, modeling  # noqa: E402,F401
from .config import add_reid_ext_config, get_cfg  # noqa: E402,F401

__version__ = "0.1.0"
