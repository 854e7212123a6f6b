"""Config keys of the hashing components: SSR (projects/SSR) model, attributes, AFR."""
from .keys import add_key


def add_hashing_config(cfg):
    # SSR model (MODEL.META_ARCHITECTURE: SSRHashing)
    add_key(cfg, "MODEL.HASH.BITS", 2048)  # identity-code length: global + all stripe codes
    add_key(cfg, "MODEL.HASH.NUM_STRIPES", 6)  # PCB stripes of the local branch (0 = global)
    add_key(cfg, "MODEL.HASH.STRIPE_BITS", 0)  # bits per stripe; 0 = BITS // (2 * STRIPES)
    add_key(cfg, "MODEL.HASH.RELAXATION", "tanh")  # phi: "tanh" (+-1) or "sigmoid" (0/1)
    add_key(cfg, "MODEL.HASH.SSR_WEIGHT", 1.0)  # weight of mean |phi(h) - sign(h).detach()|
    add_key(cfg, "MODEL.HASH.CE_WEIGHT", 1.0)  # weight of the identity CE on phi(h)
    add_key(cfg, "MODEL.HASH.TRI_WEIGHT", 1.0)  # weight of the batch-hard triplet on phi(h)
    add_key(cfg, "MODEL.HASH.TRI_MARGIN", 0.3)  # triplet margin (0 = soft margin)
    add_key(cfg, "MODEL.HASH.CE_EPSILON", 0.1)  # label smoothing of the identity CE
    add_key(cfg, "MODEL.HASH.FEATURES", "relaxed")  # eval float features: "relaxed" / "pooled"
    # Attributes: labels from reid_ext.data.attributes, AAB, attribute codes for AFR
    add_key(cfg, "MODEL.ATTR.ENABLED", False)  # load attribute labels, train attribute heads
    add_key(cfg, "MODEL.ATTR.NUM", 30)  # binary attributes (Market 30, Duke 23, SynthPerson 30)
    add_key(cfg, "MODEL.ATTR.WEIGHT", 1.0)  # weight of the attribute BCE loss
    add_key(cfg, "MODEL.ATTR.AAB", True)  # attribute-guided attention block on the last map
    add_key(cfg, "MODEL.ATTR.AAB_REDUCTION", 16)  # channel reduction ratio of the AAB
    add_key(cfg, "MODEL.ATTR.FILE", "")  # attribute .mat; "" = the dataset's own / known name
    # Evaluation (reid_ext.evaluation.hashing.ssr_hashing)
    add_key(cfg, "TEST.HASH.ENABLED", False)  # report Hamming rankings beside the float one
    add_key(cfg, "TEST.HASH.AFR_W", 0)  # AFR shortlist size w (count); 0 = Hamming only
    add_key(cfg, "TEST.HASH.EXPORT", True)  # save codes to <OUTPUT_DIR>/hash_codes_q*_g*.npz
    return cfg
