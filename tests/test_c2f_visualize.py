"""The C2F attention picture: per-pixel maps are the block's attention rows; the command writes a PNG."""
import os

import numpy as np
import torch
from PIL import Image

import reid_ext  # noqa: F401
from reid_ext.modeling.backbones.c2f import C2FAttention
from reid_ext.visualize.c2f_attention import main, pixel_attention

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pixel_attention_picks_the_rows():
    torch.manual_seed(0)
    blk = C2FAttention(16, num_heads=2, patch_size=3)
    x = torch.randn(1, 16, 7, 8)  # 3x3 patch grid, padded
    coarse, fine = blk.attention_maps(x)
    fy, fx = 4, 7  # patch (1, 2) -> token 5; in-patch (1, 1) -> index 4
    cmap, fmap = pixel_attention(coarse[0], fine[0], (7, 8), 3, fy, fx)
    assert cmap.shape == fmap.shape == (7, 8)
    row = coarse[0, :, 5].mean(0).numpy()
    np.testing.assert_allclose(cmap[0, 0], row[0], rtol=1e-6)
    np.testing.assert_allclose(cmap[6, 7], row[8], rtol=1e-6)
    np.testing.assert_allclose(cmap[3:6, 6:8], np.full((3, 2), row[5]), rtol=1e-6)
    frow = fine[0, :, 5, 4].mean(0).reshape(3, 3).numpy()
    np.testing.assert_allclose(fmap[3:6, 6:8], frow[:, :2], rtol=1e-6)  # col 8 is padding
    np.testing.assert_allclose(frow[:, 2], 0.0)  # padded keys carry no weight
    outside = fmap.copy()
    outside[3:6, 6:8] = 0
    assert not outside.any()  # zero outside the query's patch
    np.testing.assert_allclose(fmap.sum(), 1.0, rtol=1e-5)


def test_command_writes_png(tmp_path):
    img = np.zeros((50, 70, 3), np.uint8)
    img[10:40, 10:60] = (200, 40, 40)
    Image.fromarray(img).save(tmp_path / "car.jpg")
    out = tmp_path / "att.png"
    main(["--config-file", os.path.join(ROOT, "projects/C2F/configs/synth_c2f.yml"),
          "--image", str(tmp_path / "car.jpg"), "--pixel", "25", "30", "--out", str(out),
          "INPUT.SIZE_TEST", "[96, 96]"])
    pic = Image.open(out)
    assert pic.format == "PNG" and pic.size[0] > 500
