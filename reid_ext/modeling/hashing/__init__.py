"""SSR hashing ReID (issue 7): AAB, hash heads, the ``SSRHashing`` meta-architecture."""
from .core import attribute_bce, binarize, relax, split_bits, ssr_loss  # noqa: F401
from .meta_arch import SSRHashing  # noqa: F401
from .modules import AttributeGuidedAttention, AttributeHead, HashHead  # noqa: F401
