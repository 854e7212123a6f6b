"""Functional cores of SSR ("Hashing person re-identification with self-distilling smooth
relaxation", Neurocomputing 2021; our reading, see projects/SSR/README.md).

Shapes: ``h`` (B, K) real pre-activations of the hash layer; attribute ``logits`` /
``targets`` (B, A).
"""
import torch
import torch.nn.functional as F

RELAXATIONS = ("tanh", "sigmoid")


def _check(relaxation):
    if relaxation not in RELAXATIONS:
        raise ValueError(f"MODEL.HASH.RELAXATION must be one of {RELAXATIONS}, got "
                         f"{relaxation!r}")


def relax(h, relaxation="tanh"):
    """Smooth relaxed code phi(h): tanh(h) in (-1, 1) or sigmoid(h) in (0, 1); (B, K)."""
    _check(relaxation)
    return torch.tanh(h) if relaxation == "tanh" else torch.sigmoid(h)


def binarize(h, relaxation="tanh"):
    """Teacher code: sign(h) in {-1, +1} (tanh) or step(h) in {0, 1} (sigmoid); (B, K),
    no gradient. Zeros go to the positive side, as the test-time bit (h > 0) does not:
    h == 0 has measure zero for a trained real-valued layer."""
    _check(relaxation)
    pos = h >= 0
    if relaxation == "tanh":
        return torch.where(pos, 1.0, -1.0).to(h.dtype).detach()
    return pos.to(h.dtype).detach()


def ssr_loss(h, relaxation="tanh"):
    """Self-distilling smooth relaxation: per-bit mean of |phi(h) - teacher(h)|, teacher
    (the binary code) detached. (B, K) -> scalar. With tanh this equals mean(1 - |tanh h|)
    and drives |h| up, closing the gap between the relaxed and the binary code."""
    return (relax(h, relaxation) - binarize(h, relaxation)).abs().mean()


def attribute_bce(logits, targets):
    """Binary cross-entropy over labelled entries; targets in {0, 1}, negative = unknown
    (junk identities). (B, A), (B, A) -> scalar (0 when nothing is labelled)."""
    if logits.shape != targets.shape:
        raise ValueError(f"attribute logits {tuple(logits.shape)} and labels "
                         f"{tuple(targets.shape)} differ: check MODEL.ATTR.NUM")
    known = (targets >= 0).to(logits.dtype)
    loss = F.binary_cross_entropy_with_logits(logits, targets.clamp(min=0).to(logits.dtype),
                                              reduction="none")
    return (loss * known).sum() / known.sum().clamp(min=1)


def split_bits(bits, num_stripes, stripe_bits=0):
    """Code split: (global bits, bits per stripe). stripe_bits 0 = bits // (2 * stripes),
    the global code gets the rest."""
    if num_stripes < 0:
        raise ValueError(f"MODEL.HASH.NUM_STRIPES must be >= 0, got {num_stripes}")
    if num_stripes == 0:
        return bits, 0
    per = stripe_bits or bits // (2 * num_stripes)
    glob = bits - per * num_stripes
    if per < 1 or glob < 1:
        raise ValueError(f"MODEL.HASH.BITS={bits} cannot be split into a global code and "
                         f"{num_stripes} stripe codes of {per} bits (MODEL.HASH.STRIPE_BITS="
                         f"{stripe_bits})")
    return glob, per
