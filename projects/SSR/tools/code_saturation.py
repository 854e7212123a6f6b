"""How binary the relaxed codes of a trained SSR model are on its test set.

    FASTREID_DATASETS=../shared/data python projects/SSR/tools/code_saturation.py \
        --config-file projects/VIPeR/configs/ssr_128bits.yml \
        MODEL.WEIGHTS logs/protocol/viper/ssr_128/split0/model_final.pth DATASETS.VIPER.SPLIT 0

The SSR term (reid_ext.modeling.hashing.core.ssr_loss) pulls the relaxed code tanh(h)
towards its sign, so that ranking the binary codes loses little against ranking the relaxed
ones. This runs the config's first test set through the model (query and gallery, as the
evaluation does) and prints, over every bit of every item: the mean |tanh h| (1 = binary),
the share of bits with |tanh h| > 0.9 and < 0.1, and the mean cosine between each relaxed
code and its binary code. ``--weights`` a.pth ``--weights`` b.pth compares checkpoints.
"""
import argparse
import sys

import torch

import reid_ext  # noqa: F401  (registrations)
from reid_ext.modeling.hashing.core import binarize, relax
from reid_ext.reproduce.harness import markdown


def saturation(h):
    """h: (N, K) hash-layer outputs -> (mean |tanh h|, share |tanh h| > 0.9, share < 0.1,
    mean cos(tanh h, sign h)) as floats."""
    if h.dim() != 2 or h.shape[1] == 0:
        raise ValueError(f"hash logits must be (N, K) with K > 0, got {tuple(h.shape)}")
    h = h.double()
    r, b = relax(h, "tanh"), binarize(h, "tanh")
    a = r.abs()
    cos = (r * b).sum(1) / (r.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-12)
    return (a.mean().item(), (a > 0.9).double().mean().item(),
            (a < 0.1).double().mean().item(), cos.mean().item())


def test_set_logits(cfg):
    """(N, K) hash logits of the first test set, query then gallery."""
    from reid_ext.visualize.rankings import build_model, extract_features

    query, gallery = extract_features(cfg, build_model(cfg), cfg.DATASETS.TESTS[0])
    if "hash_logits" not in query.extras:
        raise ValueError(f"{cfg.MODEL.META_ARCHITECTURE} gives no 'hash_logits': the config "
                         "must be an SSR hashing model (MODEL.META_ARCHITECTURE SSRHashing or "
                         "CombinedReID)")
    return torch.cat([query.extras["hash_logits"], gallery.extras["hash_logits"]]).float()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--weights", action="append", default=None,
                   help="a checkpoint of the config; repeat to compare several "
                        "(default: MODEL.WEIGHTS)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = p.parse_args(argv)
    from reid_ext.visualize.rankings import build_cfg

    lines = []
    for w in args.weights or [None]:
        cfg = build_cfg(args.config_file, args.opts + (["MODEL.WEIGHTS", w] if w else []))
        m, hi, lo, cos = saturation(test_set_logits(cfg))
        lines.append([cfg.MODEL.WEIGHTS, f"{m:.3f}", f"{hi:.3f}", f"{lo:.3f}", f"{cos:.3f}"])
    print(markdown(["weights", "mean abs(tanh h)", "abs(tanh h) > 0.9", "abs(tanh h) < 0.1",
                    "cos(tanh h, sign h)"], lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
