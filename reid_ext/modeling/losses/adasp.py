"""AdaSP: Adaptive Sparse Pairwise loss, with its SP-H and SP-LH variants.

Reference: X. Zhou, Y. Zhong, Z. Cheng, F. Liang, L. Ma, "Adaptive Sparse Pairwise Loss
for Object Re-Identification", CVPR 2023 (arXiv 2303.18247); the semantics follow the
official code (Astaxanthin/AdaSP, ``fastreid/modeling/losses/adasp_loss.py``), rewritten
here in closed log-sum-exp form.

For every identity c of the batch (index set I_c, complement J_c), with logits
z_ij = cos(f_i, f_j) / temp:

- SP-H positive logit   h_c = -LSE_{i in I_c, j in I_c} (-z_ij)     (smooth hardest pair)
- SP-LH positive logit  e_c = LSE_{i in I_c} -LSE_{j in I_c} (-z_ij) (smooth least-hard)
- negative logit        n_c = LSE_{i in I_c, j in J_c} z_ij           (all cross pairs)
- AdaSP positive logit  a_c = w_c h_c + (1 - w_c) e_c, with the detached harmonic mean
  w_c = 2 sH sLH / (sH + sLH) of sH = temp*h_c, sLH = temp*e_c; w_c = 0 when sH <= 0.
- loss_c = softplus(n_c - x_c) (x = h, e or a); the loss is the mean over identities.

What differs from the official code (which takes the batch as P contiguous blocks of
K images and ignores label values):

- samples are grouped by label with a B x B mask: the result does not depend on the
  batch order or on the label values, and identities may have different image counts;
- an identity with a single image has only its self-pair as positive (h = e = a = 1/temp
  up to rounding): only its negatives get a gradient, as for K = 1 in the official code;
- a batch with a single identity has no negatives: n = -inf, the loss is exactly 0 with
  a zero (finite) gradient;
- w is set to 0 when sH = sLH = 0 (the official code gives 0/0 = NaN there); like the
  official code w is not clamped above (it may slightly exceed 1);
- computed in float32 (or float64 if given) with autocast disabled inside the loss, in
  log-sum-exp form with per-row max subtraction: stable for any temperature under
  fp16/bf16 autocast (the official code runs its matmul in fp16);
- no host synchronisation and no Python loop over identities: each identity's
  quantities are carried by all its samples and weighted 1 / |I_c| in the mean.
"""
import torch
import torch.nn.functional as F

from .registry import LOSS_REGISTRY

ADASP_TYPES = ("adasp", "sp-h", "sp-lh")

__all__ = ["ADASP_TYPES", "AdaSP", "adasp_loss", "masked_logsumexp"]


def masked_logsumexp(x, mask, dim=-1):
    """``log(sum(exp(x) * mask, dim))`` computed stably; ``-inf`` where nothing is kept.

    x: float tensor (may hold -inf); mask: bool tensor broadcastable to x. Gradients
    are finite everywhere (zero for entries whose row is empty or all -inf).
    """
    neg_inf = float("-inf")
    xm = x.masked_fill(~mask, neg_inf)
    m = xm.detach().amax(dim=dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    s = torch.exp(xm - m).sum(dim=dim)
    kept = s > 0
    out = torch.log(torch.where(kept, s, torch.ones_like(s))) + m.squeeze(dim)
    return torch.where(kept, out, torch.full_like(out, neg_inf))


def _check(embedding, targets, temp, loss_type):
    if loss_type not in ADASP_TYPES:
        raise ValueError(f"AdaSP loss_type (MODEL.LOSSES.ADASP.TYPE) must be one of "
                         f"{ADASP_TYPES}, got {loss_type!r}")
    if not temp > 0:
        raise ValueError(f"AdaSP temp (MODEL.LOSSES.ADASP.TEMP) must be > 0, got {temp}")
    if embedding.dim() != 2 or embedding.shape[0] == 0:
        raise ValueError(f"AdaSP expects embedding of shape (B, D) with B >= 1, "
                         f"got {tuple(embedding.shape)}")
    if targets.dim() != 1 or targets.shape[0] != embedding.shape[0]:
        raise ValueError(f"AdaSP expects targets of shape (B,) = ({embedding.shape[0]},), "
                         f"got {tuple(targets.shape)}")
    if not embedding.is_floating_point():
        raise TypeError(f"AdaSP expects a floating embedding, got {embedding.dtype}")


def adasp_loss(embedding, targets, temp=0.04, loss_type="adasp"):
    """AdaSP / SP-H / SP-LH loss (Zhou et al., CVPR 2023), mean over identities.

    Args:
        embedding: (B, D) float features (L2-normalised inside, eps 1e-12).
        targets: (B,) integer identity labels, any order, any values; identities may
            have different numbers of images (see the module docstring for 1-image
            identities and single-identity batches).
        temp: temperature tau of the logits z = cos / tau and of every smoothing.
        loss_type: "adasp", "sp-h" or "sp-lh".
    Returns:
        a scalar tensor of dtype float32 (float64 when ``embedding`` is float64), on
        ``embedding``'s device.
    """
    _check(embedding, targets, temp, loss_type)
    dtype = torch.float64 if embedding.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=embedding.device.type, enabled=False):
        f = F.normalize(embedding.to(dtype), dim=1, eps=1e-12)
        z = (f @ f.t()) / temp                                   # (B, B) logits
        same = targets.view(-1, 1) == targets.view(1, -1)        # (B, B) same identity
        # per anchor i: r_i = LSE_{j in I(i)} -z_ij,  q_i = LSE_{j not in I(i)} z_ij
        # (q_i = -inf when i has no negatives, i.e. a single identity in the batch)
        r, q = masked_logsumexp(torch.stack((-z, z)), torch.stack((same, ~same)))  # (B,) each
        # per identity (carried by each of its samples): second-level LSE over I(i)
        per_row = torch.stack((r, -r, q)).unsqueeze(1).expand(3, *same.shape)
        lse = masked_logsumexp(per_row, same.unsqueeze(0))        # (3, B)
        h, e, n = -lse[0], lse[1], lse[2]
        if loss_type == "sp-h":
            pos = h
        elif loss_type == "sp-lh":
            pos = e
        else:
            s_h, s_lh = (temp * h).detach(), (temp * e).detach()
            ok = s_h > 0
            den = torch.where(ok, s_h + s_lh, torch.ones_like(s_h))
            w = torch.where(ok, 2 * s_h * s_lh / den, torch.zeros_like(s_h))
            pos = w * h + (1 - w) * e
        per_identity = F.softplus(n - pos)                        # (B,) loss of i's identity
        count = same.sum(dim=1).to(dtype)                         # |I(i)|
        weight = 1.0 / count                                      # sums to 1 per identity
        return (per_identity * weight).sum() / weight.sum()


class AdaSP(torch.nn.Module):
    """Module form of :func:`adasp_loss`: ``AdaSP(temp, loss_type)(embedding, targets)``."""

    def __init__(self, temp=0.04, loss_type="adasp"):
        super().__init__()
        _check(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), temp, loss_type)
        self.temp, self.loss_type = temp, loss_type

    def forward(self, embedding, targets):
        return adasp_loss(embedding, targets, self.temp, self.loss_type)

    def extra_repr(self):
        return f"temp={self.temp}, loss_type={self.loss_type!r}"


@LOSS_REGISTRY.register()
def AdaSPLoss(outputs, targets, c):
    """``MODEL.LOSSES.NAME`` entry "AdaSPLoss": ``loss_adasp`` on ``outputs["features"]``
    with ``MODEL.LOSSES.ADASP.{TEMP,TYPE}``, times ``ADASP.SCALE``."""
    loss = adasp_loss(outputs["features"], targets, c.ADASP.TEMP, c.ADASP.TYPE)
    return {"loss_adasp": loss * c.ADASP.SCALE}
