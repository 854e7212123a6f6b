"""``python -m reid_ext.benchmarks``: run every benchmark and write BENCHMARKS.md.

Quick sizes by default, the issue sizes with ``--full``; see :mod:`reid_ext.benchmarks.report`.
"""
import sys

from .report import main

if __name__ == "__main__":
    outcomes = main()
    sys.exit(1 if any(o.error for o in outcomes) else 0)
