"""Make the published ``fastreid`` 1.4.0 importable and usable on today's stack.

fastreid 1.4.0 was written for Python 3.8 / torch 1.13.  Three of its import lines
fail on Python >= 3.10 and torch >= 2.0 (``torch._six`` is gone; ``Mapping`` and
``OrderedDict`` are no longer re-exported by ``collections``).  We never edit its
files: instead, before the first ``fastreid`` import, we provide the names those
lines look for.  Everything else (CPU loaders, evaluator, AMP, checkpoints) is
handled by our own subclasses in :mod:`reid_ext.engine` and :mod:`reid_ext.evaluation`.

See ``shared/specs/fastreid-modern-stack.md`` section 4 for the list of breakages.
"""
import collections
import collections.abc
import sys
import types
import warnings

_APPLIED = False


def apply():
    """Install the shims. Idempotent; must run before ``fastreid.data`` is imported."""
    global _APPLIED
    if _APPLIED:
        return
    # fastreid/data/build.py:12 and evaluation/testing.py:5 (Python >= 3.10)
    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    # fastreid/data/build.py:11 (torch >= 2.0 removed the private module torch._six)
    if "torch._six" not in sys.modules:
        try:
            import torch._six  # noqa: F401  (old torch)
        except ImportError:
            six = types.ModuleType("torch._six")
            six.string_classes = (str, bytes)
            six.int_classes = (int,)
            six.inf = float("inf")
            six.nan = float("nan")
            sys.modules["torch._six"] = six
    # fastreid/evaluation/rank.py warns at import when its Cython ranker is not built;
    # we rank with reid_ext.evaluation.rank and never use it.
    warnings.filterwarnings("ignore", message="Cython rank evaluation")
    warnings.filterwarnings("ignore", message="Cython roc evaluation")
    # torch.ByteStorage.from_buffer / TypedStorage (fastreid comm + transforms): harmless.
    warnings.filterwarnings("ignore", message="TypedStorage is deprecated")
    try:
        import fastreid  # noqa: F401
    except ImportError:
        raise ImportError(
            "reid_ext needs fastreid 1.4.0, installed without its dependency pins (they "
            "pin torch 1.13.1): pip install --no-deps fastreid==1.4.0 "
            "(or run scripts/install.sh)") from None
    _APPLIED = True


apply()
