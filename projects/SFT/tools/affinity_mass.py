"""Where SFT's blurring weight goes in a training batch: self, same identity, others.

    python projects/SFT/tools/affinity_mass.py --config-file projects/VIPeR/configs/sft.yml \
        [--batches 20] [--sigmas 0.1 0.05 0.02] [KEY VALUE ...]   # e.g. MODEL.WEIGHTS x.pth

SFT replaces each pooled feature x_i of a batch by sum_j T_ij x_j with
T = softmax(cos / sigma) (reid_ext.modeling.sft.sft_transition). It is meant to pull an
image towards the other images of its identity (the official batch has K = 8 of them);
with K = 2 (VIPeR) each image has one. This draws ``--batches`` training batches of the
config's sampler (its augmentation included), computes the pooled features the SFT head
would transform (MODEL.WEIGHTS, or the ImageNet start of training when empty, in eval
mode) and prints, per sigma, the mean mass of T's rows on the image itself, on the other
images of its identity and on the images of other identities, with the share of the
blurred part (1 - self) that comes from the same identity. The last column extrapolates
that share to K images per identity in a batch of the same size, from the measured mean
affinity of one positive and one negative (an estimate, not a measurement).
"""
import argparse
import sys

import torch

import reid_ext  # noqa: F401  (registrations)
from reid_ext.modeling.sft import sft_transition
from reid_ext.reproduce.harness import markdown


def pooled_batches(cfg, n):
    """``n`` training batches: (pooled features (B, C), pids (B,)) in eval mode."""
    from reid_ext.data.build import build_train_loader
    from reid_ext.engine import get_trainer_class
    from reid_ext.visualize.rankings import build_model

    model = (build_model(cfg) if cfg.MODEL.WEIGHTS
             else get_trainer_class(cfg).build_model(cfg).eval())  # ImageNet start
    loader = iter(build_train_loader(cfg))
    out = []
    with torch.no_grad():
        for _ in range(n):
            batch = next(loader)
            images = model.preprocess_image(batch)
            pooled = model.heads.pool_layer(model.backbone(images))[..., 0, 0]
            out.append((pooled.float(), batch["targets"].to(pooled.device)))
    return out


def masses(batches, sigma):
    """Mean row mass of T on (self, same identity, other identities), and the mean
    unnormalised affinity exp(cos / sigma) relative to self of one positive and one negative."""
    acc = torch.zeros(5, dtype=torch.float64)
    for x, pids in batches:
        t = sft_transition(x, sigma).double()
        same = pids[:, None] == pids[None, :]
        eye = torch.eye(len(pids), dtype=torch.bool, device=pids.device)
        pos, neg = same & ~eye, ~same
        diag = t.diagonal()
        rel = t / diag[:, None]
        acc += torch.stack([diag.mean(), (t * pos).sum(1).mean(), (t * neg).sum(1).mean(),
                            rel[pos].mean(), rel[neg].mean()]).cpu()
    return (acc / len(batches)).tolist()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--sigmas", type=float, nargs="+", default=[0.1, 0.05, 0.02])
    p.add_argument("--k", type=int, nargs="+", default=[2, 4, 8],
                   help="K of the extrapolated same-identity share")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE overrides")
    args = p.parse_args(argv)
    from reid_ext.visualize.rankings import build_cfg

    cfg = build_cfg(args.config_file, args.opts)  # errors name the file or override
    cfg.defrost()
    cfg.MODEL.BACKBONE.PRETRAIN = not cfg.MODEL.WEIGHTS  # no weights: the ImageNet start
    cfg.freeze()
    batches = pooled_batches(cfg, args.batches)
    b, k = len(batches[0][1]), cfg.DATALOADER.NUM_INSTANCE
    lines = []
    for sigma in args.sigmas:
        m_self, m_pos, m_neg, a_pos, a_neg = masses(batches, sigma)
        share = {kk: (kk - 1) * a_pos / ((kk - 1) * a_pos + (b - kk) * a_neg) for kk in args.k}
        lines.append([f"{sigma:g}", f"{m_self:.3f}", f"{m_pos:.3f}", f"{m_neg:.3f}",
                      f"{m_pos / max(m_pos + m_neg, 1e-12):.3f}",
                      " / ".join(f"{share[kk]:.2f}" for kk in args.k)])
    print(f"{args.batches} batches of {b} ({b // k} identities x K = {k}), weights: "
          f"{cfg.MODEL.WEIGHTS or 'ImageNet start'}")
    print(markdown(["sigma", "self", "same identity", "other identities",
                    "same-identity share of the blur",
                    "extrapolated share, K = " + " / ".join(map(str, args.k))], lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
