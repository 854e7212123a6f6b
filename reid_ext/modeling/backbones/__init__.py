"""reid_ext backbones: ResNet with coarse-to-fine (C2F) / full / non-local attention."""
from .c2f import C2FAttention, FullSelfAttention  # noqa: F401
from .resnet_c2f import build_resnet_c2f_backbone, insert_attention  # noqa: F401
