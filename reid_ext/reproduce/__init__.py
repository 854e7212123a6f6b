"""Reproduction harness: the published rows of the five papers and their configs
(``python -m reid_ext.reproduce``, console script ``reid-reproduce``)."""
from .rows import ROWS, UNPUBLISHED, Row  # noqa: F401
