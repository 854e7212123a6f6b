"""Config keys of the C2F attention backbone (``build_resnet_c2f_backbone``, projects/C2F)."""
from .keys import add_key


def add_c2f_config(cfg):
    add_key(cfg, "MODEL.BACKBONE.ATTENTION.TYPE", "c2f")  # attention block inserted in the ResNet: c2f | full | nonlocal | none
    add_key(cfg, "MODEL.BACKBONE.ATTENTION.LAYERS", [0, 2, 3, 0])  # blocks per stage (res2..res5), after the last blocks of the stage, as fastreid's non-local counts
    add_key(cfg, "MODEL.BACKBONE.ATTENTION.HEADS", 8)  # attention heads of c2f/full blocks (inner width C/2 must divide)
    add_key(cfg, "MODEL.BACKBONE.ATTENTION.PATCH_SIZE", 4)  # c2f patch size p: coarse tokens are p x p patches, fine windows p x p pixels
    return cfg
