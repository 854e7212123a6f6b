"""``ReidDataset``: fastreid's CommDataset with a clear error for a bad image file and
optional per-item extra fields.

An item is ``(path, pid, camid)`` or ``(path, pid, camid, extras)`` where ``extras`` is a
dict of tensors/numbers added to the sample (e.g. ``{"attributes": tensor}``).
"""
import torch
from fastreid.data.common import CommDataset
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageReadError(RuntimeError):
    pass


def read_image(path):
    """Read an RGB PIL image; raise :class:`ImageReadError` naming the file on failure
    (fastreid's reader gives no useful message and may loop on I/O errors)."""
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img = ImageOps.exif_transpose(img)
            return img.convert("RGB")
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ImageReadError(f"cannot read image file {path}: {e}") from None


class ReidDataset(CommDataset):
    def __getitem__(self, index):
        item = self.img_items[index]
        path, pid, camid = item[:3]
        img = read_image(path)
        if self.transform is not None:
            img = self.transform(img)
        if self.relabel:
            pid, camid = self.pid_dict[pid], self.cam_dict[camid]
        sample = {"images": img, "targets": pid, "camids": camid, "img_paths": path}
        if len(item) > 3 and item[3]:
            sample.update(item[3])
        return sample


def collate(batch):
    """Stack tensors and numbers, keep strings as lists (fastreid's collator, for dicts)."""
    out = {}
    for key in batch[0]:
        vals = [b[key] for b in batch]
        if isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        elif isinstance(vals[0], (int, float, bool)):
            out[key] = torch.tensor(vals)
        else:
            out[key] = vals
    return out
