"""SSR modules: attribute-guided attention block (AAB), attribute head, hash head."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class AttributeGuidedAttention(nn.Module):
    """AAB: channel and spatial attention computed from the feature map together with
    the predicted attribute probabilities (our design; the paper's is not public).

    feat (B, C, H, W), attr_prob (B, A) -> (B, C, H, W)::

        e   = relu(W_e p)                                  attribute embedding (B, C/r)
        a_c = sigmoid(W_c2 relu(W_c1 GAP(feat) + e))       channel weights (B, C)
        a_s = sigmoid(w_s2 * relu(W_s1 * feat + e))        spatial weights (B, 1, H, W)
        out = feat + feat * a_c * a_s                      residual
    """

    def __init__(self, channels, num_attrs, reduction=16):
        super().__init__()
        if reduction < 1 or channels // reduction < 1:
            raise ValueError(f"MODEL.ATTR.AAB_REDUCTION={reduction} is invalid for "
                             f"{channels} channels")
        mid = channels // reduction
        self.attr_embed = nn.Linear(num_attrs, mid)
        self.ch_reduce = nn.Linear(channels, mid)
        self.ch_expand = nn.Linear(mid, channels)
        self.sp_reduce = nn.Conv2d(channels, mid, 1)
        self.sp_out = nn.Conv2d(mid, 1, 1)

    def forward(self, feat, attr_prob):
        if attr_prob.size(1) != self.attr_embed.in_features:
            raise ValueError(f"AAB expects {self.attr_embed.in_features} attribute "
                             f"probabilities, got {tuple(attr_prob.shape)}")
        e = F.relu(self.attr_embed(attr_prob))
        a_c = torch.sigmoid(self.ch_expand(F.relu(self.ch_reduce(feat.mean(dim=(2, 3))) + e)))
        a_s = torch.sigmoid(self.sp_out(F.relu(self.sp_reduce(feat) + e[:, :, None, None])))
        return feat + feat * a_c[:, :, None, None] * a_s


class AttributeHead(nn.Module):
    """Binary attribute classifiers on the pooled global feature: (B, C) -> (B, A) logits."""

    def __init__(self, channels, num_attrs):
        super().__init__()
        if num_attrs < 1:
            raise ValueError(f"MODEL.ATTR.NUM must be >= 1 when MODEL.ATTR.ENABLED, got "
                             f"{num_attrs}")
        self.bn = nn.BatchNorm1d(channels)
        self.fc = nn.Linear(channels, num_attrs)

    def forward(self, pooled):
        return self.fc(self.bn(pooled))


class HashHead(nn.Module):
    """Global + PCB-stripe hash layers: feat (B, C, H, W) -> h (B, K) pre-activations,
    K = global_bits + num_stripes * stripe_bits, in the order [global, stripe 1 (top), ...].

    Each branch: pooled feature -> FC -> BN (the BN output is h)."""

    def __init__(self, channels, global_bits, num_stripes=6, stripe_bits=0):
        super().__init__()
        self.num_stripes, self.stripe_bits = num_stripes, stripe_bits
        self.global_fc = nn.Linear(channels, global_bits, bias=False)
        self.global_bn = nn.BatchNorm1d(global_bits)
        if num_stripes:
            w = torch.empty(num_stripes, channels, stripe_bits)
            for s in range(num_stripes):
                nn.init.kaiming_uniform_(w[s].T, a=5 ** 0.5)  # as nn.Linear
            self.stripe_weight = nn.Parameter(w)
            self.stripe_bn = nn.BatchNorm1d(num_stripes * stripe_bits)

    @property
    def bits(self):
        return self.global_fc.out_features + self.num_stripes * self.stripe_bits

    def forward(self, feat):
        h = self.global_bn(self.global_fc(feat.mean(dim=(2, 3))))
        if not self.num_stripes:
            return h
        if feat.size(2) < self.num_stripes:
            raise ValueError(f"feature map height {feat.size(2)} < MODEL.HASH.NUM_STRIPES="
                             f"{self.num_stripes}; use a larger input size")
        stripes = F.adaptive_avg_pool2d(feat, (self.num_stripes, 1))[..., 0]  # (B, C, S)
        hs = torch.einsum("bcs,scd->bsd", stripes, self.stripe_weight).flatten(1)
        return torch.cat([h, self.stripe_bn(hs)], dim=1)
