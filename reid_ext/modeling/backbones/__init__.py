"""reid_ext backbones: ResNet with coarse-to-fine (C2F) / full / non-local attention;
ResNet and MobileNetV2 with checked ImageNet weights from a file (MobileNetV2 also with
attention blocks)."""
from .c2f import C2FAttention, FullSelfAttention  # noqa: F401
from .mobilenetv2 import build_reid_mobilenetv2_backbone  # noqa: F401
from .mobilenetv2_c2f import build_mobilenetv2_c2f_backbone  # noqa: F401
from .pretrained import PretrainedWeightsError, load_pretrained  # noqa: F401
from .resnet import build_reid_resnet_backbone  # noqa: F401
from .resnet_c2f import build_resnet_c2f_backbone, insert_attention  # noqa: F401
