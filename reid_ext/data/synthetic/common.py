"""Shared machinery of the synthetic ReID datasets (:mod:`.person`, :mod:`.vehicle`).

* :class:`SyntheticReidDataset`: the fastreid ``ImageDataset`` base class. It resolves
  the parameters, generates the images once into a cache folder
  ``<root>/<ClassName>/<tag>/`` (into a temporary folder renamed atomically, with a
  completion marker written last) and parses the files back like fastreid's own
  Market1501 / VeRi loaders do.
* The split plan: which identity is photographed by which camera, which test images
  become queries, how many distractors the gallery holds.
* Seeded randomness: every image gets its own ``numpy`` Generator keyed by
  ``(seed, stream, pid, image index)``, so files do not depend on rendering order.
* Drawing primitives used by both renderers: backgrounds, clutter, occluders,
  camera colour cast / noise / blur, polygon helpers, JPEG writing.
"""
import json
import logging
import os
import os.path as osp
import shutil
import tempfile
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import reid_ext.compat  # noqa: F401  (before any fastreid.data import)
from fastreid.data.datasets.bases import ImageDataset  # noqa: E402

logger = logging.getLogger("reid_ext.data")

GENERATOR_VERSION = 2  # bump when the rendering changes: it is part of the cache folder name
JPEG_QUALITY = 90
DONE_MARKER = "GENERATION_COMPLETE"

# Independent random streams, the second element of every seed sequence.
STREAM_IDENTITIES, STREAM_CAMERAS, STREAM_PLAN, STREAM_IMAGES, STREAM_DISTRACTORS = range(1, 6)


# ----------------------------------------------------------------------------- rng

def make_rng(seed, stream, *keys):
    """A numpy Generator for ``(seed, stream, *keys)``: independent of any other stream."""
    return np.random.default_rng([int(seed), int(stream), *map(int, keys)])


def pick(rng, options, weights=None):
    """One element of ``options`` (optionally weighted; weights need not sum to 1)."""
    if weights is not None:
        weights = np.asarray(weights, float)
        weights = weights / weights.sum()
    return options[int(rng.choice(len(options), p=weights))]


def jitter_colour(rgb, rng, amount):
    """``rgb`` with each channel moved by up to ``amount`` (a list of ints, JSON-friendly)."""
    moved = np.asarray(rgb, float) + rng.uniform(-amount, amount, 3)
    return [int(c) for c in np.clip(moved, 0, 255)]


def scale_colour(rgb, factor):
    """``rgb`` multiplied by ``factor`` (shading), as a PIL colour tuple."""
    return tuple(int(min(255, max(0, c * factor))) for c in rgb)


# ----------------------------------------------------------------------------- cameras

@dataclass(frozen=True)
class Camera:
    """Per-camera imaging conditions, shared by every image a camera takes."""
    number: int  # 1-based, as in the file names
    gain: tuple  # per-channel colour cast
    brightness: float
    contrast: float
    noise: float  # gaussian noise sigma (grey levels)
    blur: float  # base blur sigma, in pixels of a 128-pixel-high image
    palette: tuple  # a few scene colours (background walls, road, ...)
    horizon: float  # where the background's far plane meets the ground (fraction of H)
    preferred_view: float  # in [0, 1): the view this camera mostly sees (see sample_view)


def sample_camera(rng, number):
    """Random imaging conditions of camera ``number``."""
    gain = rng.uniform(0.82, 1.18, 3)
    palette = tuple(tuple(int(c) for c in rng.uniform(40, 200) + rng.uniform(-35, 35, 3))
                    for _ in range(4))
    return Camera(number=number, gain=tuple(gain / gain.mean()),
                  brightness=float(rng.uniform(0.72, 1.22)),
                  contrast=float(rng.uniform(0.8, 1.15)),
                  noise=float(rng.uniform(1.5, 7.0)), blur=float(rng.uniform(0.0, 0.9)),
                  palette=palette, horizon=float(rng.uniform(0.35, 0.75)),
                  preferred_view=float(rng.random()))


def sample_cameras(seed, num_cams):
    """The ``num_cams`` cameras of a dataset (numbered 1..num_cams)."""
    rng = make_rng(seed, STREAM_CAMERAS)
    return [sample_camera(rng, k + 1) for k in range(num_cams)]


def sample_view(rng, camera, views, focus):
    """A viewpoint: with probability ``focus`` the camera's preferred one, else uniform."""
    if rng.random() < focus:
        return views[int(camera.preferred_view * len(views))]
    return pick(rng, views)


# ----------------------------------------------------------------------------- split plan

@dataclass(frozen=True)
class ImageSpec:
    """One image to render."""
    pid: int  # identity; 0 = distractor
    camera: int  # 1-based camera number
    split: str  # "train", "query" or "gallery"
    index: int  # image number within the identity (distractors: distractor number)
    frame: int  # running number, unique in the dataset (used in the file name)


def assign_cameras(rng, num_images, num_cams):
    """Camera numbers of one identity's images, at least two distinct ones."""
    cams = rng.integers(1, num_cams + 1, num_images)
    if np.all(cams == cams[0]):
        cams[-1] = 1 + (cams[0] + rng.integers(0, num_cams - 1)) % num_cams
    return cams


def choose_queries(rng, cams):
    """Indices of the query images of one test identity: one image for each of 1-2
    cameras, always leaving the gallery an image from a camera no query uses."""
    distinct = np.unique(cams)
    n_query = min(int(rng.integers(1, 3)), len(distinct) - 1)
    query_cams = rng.choice(distinct, n_query, replace=False)
    return {int(rng.choice(np.flatnonzero(cams == c))) for c in query_cams}


def plan_images(seed, train_pids, test_pids, imgs_per_id, num_cams, num_distractors):
    """Every image of the dataset as :class:`ImageSpec` (train, query, then gallery)."""
    rng = make_rng(seed, STREAM_PLAN)
    rows = []
    for pid in train_pids:
        rows += [(pid, c, "train", k) for k, c in enumerate(assign_cameras(rng, imgs_per_id, num_cams))]
    for pid in test_pids:
        cams = assign_cameras(rng, imgs_per_id, num_cams)
        queries = choose_queries(rng, cams)
        rows += [(pid, c, "query" if k in queries else "gallery", k) for k, c in enumerate(cams)]
    rows += [(0, int(c), "gallery", k)
             for k, c in enumerate(rng.integers(1, num_cams + 1, num_distractors))]
    return [ImageSpec(int(p), int(c), s, k, frame=25 * (i + 1)) for i, (p, c, s, k) in enumerate(rows)]


# ----------------------------------------------------------------------------- cache folder

def is_complete(folder):
    """Whether ``folder`` holds a finished generation."""
    return osp.isfile(osp.join(folder, DONE_MARKER))


def generate_once(folder, build):
    """Run ``build(tmp_folder)`` and move the result to ``folder`` unless it is complete.

    The build writes into a fresh temporary sibling folder; the completion marker is
    written last and the folder renamed atomically, so an interrupted generation is
    redone and two processes never see a half-written dataset. Returns whether this
    call generated the data.
    """
    if is_complete(folder):
        return False
    parent = osp.dirname(osp.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".tmp-{osp.basename(folder)}-", dir=parent)
    try:
        os.chmod(tmp, 0o755)
        build(tmp)
        with open(osp.join(tmp, DONE_MARKER), "w") as f:
            f.write(f"reid_ext synthetic data generator v{GENERATOR_VERSION}\n")
        if osp.isdir(folder) and not is_complete(folder):
            shutil.rmtree(folder)  # left over by something other than generate_once
        try:
            os.rename(tmp, folder)
        except OSError:
            if not is_complete(folder):  # not a concurrent process that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return True


def save_jpeg(image, path):
    """Write ``image`` as a JPEG of quality :data:`JPEG_QUALITY`."""
    image.save(path, format="JPEG", quality=JPEG_QUALITY)


def save_json(obj, path):
    """Write ``obj`` as sorted, indented JSON (deterministic bytes)."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")


# ----------------------------------------------------------------------------- drawing

def ellipse_points(cx, cy, rx, ry, n=20):
    """``n`` points of an ellipse, as an (n, 2) array (for mapping through a frame)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def lerp(a, b, t):
    """The point a fraction ``t`` of the way from ``a`` to ``b``."""
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b))


def vertical_gradient(h, w, top, bottom):
    """An (h, w, 3) float image going from colour ``top`` to colour ``bottom``."""
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    row = (1 - t) * np.asarray(top, np.float32) + t * np.asarray(bottom, np.float32)
    return np.broadcast_to(row, (h, w, 3)).copy()


def two_plane_background(rng, camera, h, w, far, ground):
    """A far plane (wall, buildings) above ``camera.horizon`` and a ground plane below,
    each a jittered vertical gradient; returns an (h, w, 3) float image."""
    y = int(h * np.clip(camera.horizon + rng.normal(0, 0.05), 0.1, 0.9))
    image = np.empty((h, w, 3), np.float32)
    image[:y] = vertical_gradient(y, w, jitter_colour(far, rng, 20), jitter_colour(far, rng, 20))
    image[y:] = vertical_gradient(h - y, w, jitter_colour(ground, rng, 15),
                                  jitter_colour(ground, rng, 25))
    return image


def add_rectangles(image, rng, count, palette, max_frac=0.45, y_range=(0.0, 1.0)):
    """Paint ``count`` random flat rectangles (clutter) with colours near ``palette``."""
    h, w = image.shape[:2]
    for _ in range(count):
        rh, rw = rng.uniform(0.04, max_frac, 2) * (h, w)
        y0 = rng.uniform(y_range[0], y_range[1]) * h - rh / 2
        x0 = rng.uniform(-0.1, 1.0) * w - rw / 2
        ys, xs = slice(max(0, int(y0)), max(0, int(y0 + rh))), slice(max(0, int(x0)), max(0, int(x0 + rw)))
        image[ys, xs] = jitter_colour(pick(rng, palette), rng, 45)


def add_occluder(image, rng, box):
    """Cover part of the object in ``box`` = (x0, y0, x1, y1) pixels with a textured
    block entering from the bottom or from one side (a bench, a pole, a passer-by)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    if rng.random() < 0.5:  # from the bottom
        top = int(y0 + (y1 - y0) * rng.uniform(0.55, 0.8))
        left, right = int(w * rng.uniform(-0.2, 0.3)), int(w * rng.uniform(0.7, 1.2))
        region = (slice(top, h), slice(max(0, left), min(w, right)))
    else:  # from one side
        width = (x1 - x0) * rng.uniform(0.25, 0.45)
        left = int(x0 - width * 0.3) if rng.random() < 0.5 else int(x1 - width * 0.7)
        region = (slice(int(h * rng.uniform(0, 0.3)), h), slice(max(0, left), max(0, int(left + width))))
    block = image[region]
    block[:] = rng.uniform(30, 220, 3)
    block += rng.normal(0, 12, block.shape[:2])[..., None].astype(np.float32)


def stripe_texture(h, w, colour, other, period, kind, phase=0.0):
    """An (h, w, 3) uint8 texture: ``colour`` with ``other`` stripes (horizontal bands of
    ``period`` pixels) or checks; ``phase`` shifts the bands vertically."""
    bands_y = ((np.arange(h)[:, None] + phase) // max(1.0, period / 2)).astype(int) % 2
    if kind == "checks":
        bands_y = bands_y ^ ((np.arange(w)[None, :] // max(1.0, period / 2)).astype(int) % 2)
    else:
        bands_y = np.broadcast_to(bands_y, (h, w))
    return np.where(bands_y[..., None] == 1, np.asarray(other, np.uint8), np.asarray(colour, np.uint8))


def fill_polygon_texture(image, polygon, texture):
    """Paint ``texture`` (same size as ``image``) inside ``polygon`` (pixel points)."""
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    image.paste(Image.fromarray(texture), (0, 0), mask)


def apply_camera(image, camera, rng):
    """Colour cast, brightness (with per-image jitter), contrast and sensor noise of
    ``camera`` applied to a float (h, w, 3) image; returns uint8."""
    gain = np.asarray(camera.gain, np.float32) * camera.brightness * rng.uniform(0.88, 1.12)
    image = image * gain
    mean = float(image.mean())
    image = (image - mean) * camera.contrast + mean
    image += camera.noise * rng.standard_normal(image.shape, dtype=np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def camera_blur(image, camera, rng, extra_prob=0.3):
    """The camera's base blur plus, sometimes, motion/defocus blur; radii scale with H."""
    sigma = camera.blur + (rng.uniform(0.3, 1.3) if rng.random() < extra_prob else 0.0)
    sigma *= image.height / 128
    return image.filter(ImageFilter.GaussianBlur(sigma)) if sigma > 0.15 else image


# ----------------------------------------------------------------------------- dataset base

@dataclass(frozen=True)
class SynthParams:
    """The parameters that define a synthetic dataset (and its cache folder)."""
    num_train_ids: int
    num_test_ids: int
    imgs_per_id: int
    num_cams: int
    size: tuple  # (H, W)
    seed: int

    def tag(self):
        """The readable cache-folder name (no ``<digits>_c<digit>`` that a fastreid
        file-name regex could match)."""
        h, w = self.size
        return (f"v{GENERATOR_VERSION}-ids{self.num_train_ids}+{self.num_test_ids}"
                f"-img{self.imgs_per_id}-cam{self.num_cams}-{h}x{w}-seed{self.seed}")


class SyntheticReidDataset(ImageDataset):
    """Base class of the self-generating datasets.

    Subclasses set :attr:`defaults`, :attr:`split_dirs`, :attr:`name_pattern`,
    :attr:`max_cams`, :attr:`dataset_name` and implement :meth:`random_identity`,
    :meth:`lookalike_of`, :meth:`render`, :meth:`file_name` and :meth:`write_metadata`.
    """
    _junk_pids = [0, -1]
    dataset_name = ""
    defaults = {}  # num_train_ids, num_test_ids, imgs_per_id, num_cams, size
    split_dirs = {}  # split -> folder name
    name_pattern = None  # compiled regex; groups (pid, camera) from a file name
    max_cams = 9
    distractor_fraction = 0.25  # gallery distractors per test identity
    lookalike_fraction = 0.33  # identities sampled as look-alikes of an earlier one

    def __init__(self, root="datasets", num_train_ids=0, num_test_ids=0, imgs_per_id=0,
                 num_cams=0, size=(), seed=0, **kwargs):
        self.root = root
        self.params = self.resolve_params(num_train_ids, num_test_ids, imgs_per_id, num_cams, size, seed)
        self._dataset_dir = osp.join(root, type(self).__name__, self.params.tag())
        generate_once(self._dataset_dir, self._generate)
        train = self._read_split("train")
        query = self._read_split("query")
        gallery = self._read_split("gallery")
        super().__init__(train, query, gallery, **kwargs)

    @property
    def dataset_dir(self):
        """The folder holding this parameter set's images and metadata."""
        return self._dataset_dir

    @classmethod
    def cfg_kwargs(cls, cfg):
        """Constructor kwargs from ``cfg.DATASETS.SYNTH`` (0 / [] = the class default)."""
        synth = cfg.DATASETS.SYNTH
        return {"num_train_ids": int(synth.NUM_TRAIN_IDS), "num_test_ids": int(synth.NUM_TEST_IDS),
                "imgs_per_id": int(synth.IMGS_PER_ID), "num_cams": int(synth.NUM_CAMS),
                "size": tuple(int(s) for s in synth.SIZE), "seed": int(synth.SEED)}

    @classmethod
    def resolve_params(cls, num_train_ids=0, num_test_ids=0, imgs_per_id=0, num_cams=0, size=(),
                       seed=0):
        """:class:`SynthParams` with the class defaults filled in for 0 / empty values;
        raises ValueError for unusable values."""
        d = cls.defaults
        params = SynthParams(int(num_train_ids or d["num_train_ids"]),
                             int(num_test_ids or d["num_test_ids"]),
                             int(imgs_per_id or d["imgs_per_id"]), int(num_cams or d["num_cams"]),
                             tuple(int(s) for s in (size or d["size"])), int(seed))
        if len(params.size) != 2 or min(params.size) < 16:
            raise ValueError(f"size must be [H, W] with H, W >= 16, got {list(params.size)}")
        if min(params.num_train_ids, params.num_test_ids, params.seed + 1) < 1:
            raise ValueError(f"identity counts must be positive and seed >= 0, got {params}")
        if params.imgs_per_id < 2 or not 2 <= params.num_cams <= cls.max_cams:
            raise ValueError(f"{cls.__name__} needs imgs_per_id >= 2 and "
                             f"2 <= num_cams <= {cls.max_cams}, got {params}")
        return params

    def _generate(self, folder):
        """Sample identities and the split plan, render every image, write metadata."""
        p, start = self.params, time.time()
        train_pids = list(range(1, p.num_train_ids + 1))
        test_pids = list(range(p.num_train_ids + 1, p.num_train_ids + p.num_test_ids + 1))
        identities = self.sample_identities(make_rng(p.seed, STREAM_IDENTITIES), train_pids, test_pids)
        num_distractors = max(1, int(round(self.distractor_fraction * p.num_test_ids)))
        plan = plan_images(p.seed, train_pids, test_pids, p.imgs_per_id, p.num_cams, num_distractors)
        logger.info("Generating %s (%d train ids, %d test ids, %d images, %dx%d) in %s",
                    type(self).__name__, p.num_train_ids, p.num_test_ids, len(plan), *p.size,
                    self._dataset_dir)
        self._render_images(folder, plan, identities)
        self.write_metadata(folder, identities, train_pids, test_pids)
        counts = {s: sum(spec.split == s for spec in plan) for s in self.split_dirs}
        logger.info("Generated %s: %d train / %d query / %d gallery images in %.1f s",
                    type(self).__name__, counts["train"], counts["query"], counts["gallery"],
                    time.time() - start)

    def _render_images(self, folder, plan, identities):
        """Render and save every image of ``plan`` (distractors get a fresh identity)."""
        p = self.params
        cameras = sample_cameras(p.seed, p.num_cams)
        for name in self.split_dirs.values():
            os.makedirs(osp.join(folder, name))
        for spec in plan:
            if spec.pid:
                rng = make_rng(p.seed, STREAM_IMAGES, spec.pid, spec.index)
                identity = identities[spec.pid]
            else:
                rng = make_rng(p.seed, STREAM_DISTRACTORS, spec.index)
                identity = self.random_identity(rng)
            image = self.render(identity, cameras[spec.camera - 1], rng, p.size)
            save_jpeg(image, osp.join(folder, self.split_dirs[spec.split], self.file_name(spec)))

    def _read_split(self, split):
        """``(path, pid, camid)`` items of one split, parsed from the file names like
        fastreid's loaders (camid 0-based; train pid/camid prefixed with dataset_name)."""
        folder = osp.join(self._dataset_dir, self.split_dirs[split])
        items = []
        for name in sorted(os.listdir(folder)):
            match = self.name_pattern.match(name)
            if match is None:
                continue
            pid, camid = int(match.group(1)), int(match.group(2)) - 1
            if split == "train":
                pid, camid = f"{self.dataset_name}_{pid}", f"{self.dataset_name}_{camid}"
            items.append((osp.join(folder, name), pid, camid))
        return items

    def sample_identities(self, rng, train_pids, test_pids):
        """``{pid: identity}`` for every train and test pid; a fraction are look-alikes
        of an earlier identity of the same split."""
        identities = {}
        for pids in (train_pids, test_pids):
            for i, pid in enumerate(pids):
                if i and rng.random() < self.lookalike_fraction:
                    parent = pids[int(rng.integers(i))]
                    identities[pid] = self.lookalike_of(identities[parent], parent, rng)
                else:
                    identities[pid] = self.random_identity(rng)
        return identities

    # ---- hooks implemented by the subclasses
    def random_identity(self, rng):
        """A new random identity (also used for gallery distractors)."""
        raise NotImplementedError

    def lookalike_of(self, parent, parent_pid, rng):
        """A new identity that shares most of ``parent``'s appearance."""
        raise NotImplementedError

    def render(self, identity, camera, rng, size):
        """One PIL RGB image of ``identity`` seen by ``camera``, of ``size`` (H, W)."""
        raise NotImplementedError

    def file_name(self, spec):
        """The file name of image ``spec`` (dataset naming convention)."""
        raise NotImplementedError

    def write_metadata(self, folder, identities, train_pids, test_pids):
        """Write attribute files next to the image folders."""
        raise NotImplementedError
