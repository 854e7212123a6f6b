"""Evaluation protocols over many splits (``python -m reid_ext.protocol``, ``reid-protocol``).

:mod:`.runner` runs variants x splits (reusing and resuming runs), :mod:`.report` makes
the tables from the committed results files, and each protocol module (:mod:`.viper`)
lists its variants and writes its pages.
"""
from . import viper

PROTOCOLS = {"viper": viper}
