"""reid_ext heads (each registers itself in fastreid's REID_HEADS_REGISTRY)."""
from .sft_head import SFTHead  # noqa: F401
from .embedding_head import ReidEmbeddingHead  # noqa: F401
