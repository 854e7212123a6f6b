"""Evaluation: one ranking evaluator, the fastreid-compatible evaluator and its variants."""
from .evaluator import ReidExtEvaluator, k_reciprocal_distance  # noqa: F401
from .rank import evaluate_rank, evaluate_ranking, rank_by_distance, summarize  # noqa: F401
from .variants import EVAL_VARIANTS, FeatureSet, VariantOutput, check_variant_configs  # noqa: F401
# -- evaluation variants (one import line per method module) --
from . import hashing  # noqa: F401,E402  (SSR Hamming / AFR variant)
from . import nformer_variant  # noqa: F401,E402  (issue 6: NFormer)
from . import lbr  # noqa: F401,E402  (TEST.LBR: Local Blurring Re-ranking)
from . import krecip  # noqa: F401,E402  (TEST.KRECIP: k-reciprocal beside the plain result)
