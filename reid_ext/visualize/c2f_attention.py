"""Render the coarse (patch) and fine (within-patch) attention of a C2F block as a PNG.

    python -m reid_ext.visualize.c2f_attention --config-file projects/C2F/configs/veri_c2f.yml \
        --image car.jpg --pixel Y X --out attention.png [--block 0] [MODEL.WEIGHTS model.pth ...]

The image is resized and normalised as at test time (``INPUT.SIZE_TEST``), run through
the backbone, and the input of the chosen C2F block (``--block``: index among the
backbone's C2F blocks in forward order) is captured. For the feature-map pixel under the
image pixel (Y, X) it shows, averaged over heads (``--head`` picks one):
  1. the image with the chosen pixel and its patch;
  2. coarse stage: the softmax weights of the pixel's patch token over all patch tokens,
     painted over the image (every pixel of a patch gets its patch's weight);
  3. fine stage: the softmax weights of the pixel over the p x p pixels of its patch,
     painted at the patch's location (zero elsewhere), with a zoom on the patch.
Without MODEL.WEIGHTS the model is randomly initialised (and the block's attention is
then that of random projections).
"""
import argparse
import sys

import numpy as np
import torch


def _parse(argv):
    ap = argparse.ArgumentParser(description="C2F attention picture")
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--image", required=True, help="image file (any PIL format)")
    ap.add_argument("--pixel", type=int, nargs=2, metavar=("Y", "X"), required=True,
                    help="pixel in the original image (row, column)")
    ap.add_argument("--out", required=True, help="output PNG")
    ap.add_argument("--block", type=int, default=0, help="index of the C2F block (forward order)")
    ap.add_argument("--head", type=int, default=-1, help="attention head (-1 = mean over heads)")
    ap.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    return ap.parse_args(argv)


def c2f_blocks(backbone):
    """The C2F blocks of a backbone in forward order: list of (name, module)."""
    from reid_ext.modeling.backbones.c2f import C2FAttention
    return [(n, m) for n, m in backbone.named_modules() if isinstance(m, C2FAttention)]


def pixel_attention(coarse, fine, feat_hw, p, fy, fx, head=-1):
    """Per-pixel coarse and fine weight maps on the feature grid.

    coarse: (heads, L, L), fine: (heads, L, p*p, p*p) for one image; feat_hw = (Hf, Wf);
    (fy, fx): feature pixel. Returns two (Hf, Wf) arrays: the coarse weight of each
    pixel's patch for the query patch, and the fine weight of each pixel for the query
    pixel (zero outside the query's patch).
    """
    hf, wf = feat_hw
    gh, gw = -(-hf // p), -(-wf // p)
    if not (0 <= fy < hf and 0 <= fx < wf):
        raise ValueError(f"feature pixel ({fy}, {fx}) outside the {hf}x{wf} map")
    t = (fy // p) * gw + fx // p
    i = (fy % p) * p + fx % p
    c = coarse[:, t] if head < 0 else coarse[head:head + 1, t]
    f = fine[:, t, i] if head < 0 else fine[head:head + 1, t, i]
    c, f = c.mean(0).reshape(gh, gw), f.mean(0).reshape(p, p)
    cmap = c.repeat_interleave(p, 0).repeat_interleave(p, 1)[:hf, :wf]
    fmap = torch.zeros(gh * p, gw * p, dtype=f.dtype)
    r0, c0 = (fy // p) * p, (fx // p) * p
    fmap[r0:r0 + p, c0:c0 + p] = f
    return cmap.numpy(), fmap[:hf, :wf].numpy()


def main(argv=None):
    args = _parse(sys.argv[1:] if argv is None else argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image
    from fastreid.data.transforms import build_transforms
    from fastreid.modeling.meta_arch import build_model
    from fastreid.utils.checkpoint import Checkpointer

    import reid_ext  # noqa: F401
    from reid_ext.config import get_cfg, merge_from_file

    cfg = get_cfg()
    merge_from_file(cfg, args.config_file)
    cfg.merge_from_list(list(args.opts))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.BACKBONE.PRETRAIN = False  # weights, if any, come from MODEL.WEIGHTS
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        Checkpointer(model).load(cfg.MODEL.WEIGHTS)
    blocks = c2f_blocks(model.backbone)
    if not blocks:
        raise SystemExit(f"{args.config_file}: no C2F block in the backbone "
                         f"(MODEL.BACKBONE.NAME / MODEL.BACKBONE.ATTENTION.TYPE must be c2f)")
    if not 0 <= args.block < len(blocks):
        raise SystemExit(f"--block {args.block}: the backbone has {len(blocks)} C2F blocks")
    name, block = blocks[args.block]

    image = Image.open(args.image).convert("RGB")
    w0, h0 = image.size
    y0, x0 = args.pixel
    if not (0 <= y0 < h0 and 0 <= x0 < w0):
        raise SystemExit(f"--pixel {y0} {x0} outside the {h0}x{w0} image {args.image}")
    tensor = build_transforms(cfg, is_train=False)(image)[None]
    hi, wi = tensor.shape[-2:]

    captured = {}
    handle = block.register_forward_pre_hook(lambda m, inp: captured.setdefault("x", inp[0].detach()))
    with torch.no_grad():
        model.backbone(model.preprocess_image({"images": tensor}))
    handle.remove()
    x = captured["x"]
    coarse, fine = block.attention_maps(x)
    hf, wf = x.shape[-2:]
    p = block.patch_size
    fy, fx = min(int(y0 * hf / h0), hf - 1), min(int(x0 * wf / w0), wf - 1)
    cmap, fmap = pixel_attention(coarse[0], fine[0], (hf, wf), p, fy, fx, args.head)

    shown = np.asarray(image.resize((wi, hi)))
    sy, sx = hi / hf, wi / wf  # image pixels per feature pixel
    py, px = y0 * hi / h0, x0 * wi / w0
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.6))
    ext = (0, wi, hi, 0)
    axes[0].imshow(shown)
    axes[0].set_title(f"input {hi}x{wi}, pixel ({y0}, {x0})")
    for ax, amap, title in ((axes[1], cmap, f"coarse: patch {p}x{p} -> all patches"),
                            (axes[2], fmap, "fine: pixel -> pixels of its patch")):
        ax.imshow(shown)
        im = ax.imshow(amap, cmap="jet", alpha=0.55, extent=ext, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046)
        ax.set_title(title)
    r0, c0 = (fy // p) * p, (fx // p) * p
    rect = dict(fill=False, edgecolor="white", linewidth=1.5)
    for ax in axes[:3]:
        ax.add_patch(plt.Rectangle((c0 * sx, r0 * sy), p * sx, p * sy, **rect))
        ax.plot([px], [py], marker="+", color="white", markersize=12, mew=2)
        ax.set_axis_off()
    zoom = fmap[r0:r0 + p, c0:c0 + p]
    im = axes[3].imshow(zoom, cmap="jet", interpolation="nearest")
    for (r, c), val in np.ndenumerate(zoom):
        axes[3].text(c, r, f"{val:.2f}", ha="center", va="center", color="white", fontsize=8)
    axes[3].plot([fx - c0], [fy - r0], marker="s", mfc="none", mec="white", markersize=18, mew=2)
    axes[3].set_title("fine weights (zoom on the patch)")
    axes[3].set_xticks([])
    axes[3].set_yticks([])
    head = "mean over heads" if args.head < 0 else f"head {args.head}"
    fig.suptitle(f"C2F block {args.block} ({name}): {hf}x{wf} map, {head}"
                 + ("" if cfg.MODEL.WEIGHTS else ", random weights (no MODEL.WEIGHTS)"))
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    plt.close(fig)
    print(f"wrote {args.out} (block {name}, feature pixel ({fy}, {fx}) of {hf}x{wf}, patch size {p})")


if __name__ == "__main__":
    main()
