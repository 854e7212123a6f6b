"""SynthPerson: pedestrian-like images in Market-1501 layout, with Market attributes.

Every identity is defined by the 27 attributes of the Market-1501 attribute annotation
(gender, hair, sleeve and lower-garment length, dress/pants, hat, backpack, bag,
handbag, age, one of 8 upper and one of 9 lower colours) plus details an annotator
would not record (clothing pattern, colour shades, skin/hair/shoe colours, carried-item
colours and side, build). About a third of the identities are look-alikes: copies of
an earlier identity of the same split with one attribute and a few details changed.

Each image varies the camera (colour cast, brightness, noise, blur), the viewpoint
(front / back / side), scale and position, a cluttered background and sometimes an
occluder. All coordinates are fractions of the figure height, so images are drawn at
the requested resolution.
"""
import io
import os.path as osp
import re
from dataclasses import dataclass

import numpy as np
import scipy.io
from PIL import Image, ImageDraw

import reid_ext.compat  # noqa: F401  (before any fastreid.data import)
from fastreid.data.datasets import DATASET_REGISTRY

from .common import (SyntheticReidDataset, add_occluder, add_rectangles, apply_camera,
                     camera_blur, fill_polygon_texture, jitter_colour, lerp, pick, save_json,
                     sample_view, scale_colour, stripe_texture, two_plane_background)

UPPER_COLOURS = {"black": (28, 28, 30), "white": (232, 232, 226), "red": (196, 36, 40),
                 "purple": (118, 52, 150), "yellow": (228, 196, 42), "gray": (126, 126, 128),
                 "blue": (42, 72, 178), "green": (42, 138, 62)}
LOWER_COLOURS = {"black": (28, 28, 30), "white": (232, 232, 226), "pink": (232, 148, 178),
                 "purple": (110, 50, 140), "yellow": (220, 190, 50), "gray": (120, 120, 124),
                 "blue": (44, 64, 130), "green": (60, 110, 50), "brown": (118, 78, 44)}
UPPER_WEIGHTS = (0.2, 0.18, 0.1, 0.05, 0.07, 0.16, 0.14, 0.1)
LOWER_WEIGHTS = (0.3, 0.08, 0.04, 0.03, 0.03, 0.14, 0.22, 0.06, 0.1)

# The 27 attributes, in the field order of Market-1501's market_attribute.mat.
MARKET_ATTRIBUTES = (
    "age", "backpack", "bag", "handbag",
    "downblack", "downblue", "downbrown", "downgray", "downgreen", "downpink", "downpurple",
    "downwhite", "downyellow",
    "upblack", "upblue", "upgreen", "upgray", "uppurple", "upred", "upwhite", "upyellow",
    "clothes", "down", "up", "hair", "hat", "gender")

SKIN_TONES = ((236, 200, 170), (214, 170, 130), (180, 130, 95), (120, 84, 60))
HAIR_COLOURS = ((25, 20, 18), (60, 40, 25), (110, 75, 40), (200, 170, 110))
GREY_HAIR = (178, 178, 172)
ITEM_COLOURS = ((30, 30, 30), (90, 60, 40), (40, 50, 95), (150, 30, 30), (205, 205, 200),
                (70, 95, 60), (195, 150, 60), (120, 60, 120))
SHOE_COLOURS = ((25, 25, 25), (232, 232, 232), (100, 70, 45), (120, 120, 125), (40, 60, 120))
PATTERN_COLOURS = ((238, 238, 232), (22, 22, 26), (200, 40, 40), (40, 70, 170), (222, 192, 50))
PATTERNS = ("plain", "stripes", "checks")
VIEWS = ("front", "back", "side")
AGE_HEIGHT = {1: 0.72, 2: 0.88, 3: 0.96, 4: 0.92}  # figure height / image height
HEAD_RADIUS = {1: 0.085, 2: 0.07, 3: 0.062, 4: 0.064}  # in figure heights
OCCLUSION_PROB = 0.25
VIEW_FOCUS = 0.35  # how strongly a camera prefers its own viewpoint

# Detail groups a look-alike resamples (two of them).
DETAIL_GROUPS = (("pattern", "pattern_rgb", "pattern_period"), ("upper_rgb", "lower_rgb"),
                 ("shoe_rgb",), ("backpack_rgb", "bag_rgb", "bag_side"),
                 ("build", "height"), ("hair_rgb", "hat_rgb"))
FLIPPABLE = ("hat", "backpack", "bag", "handbag", "up", "down", "hair", "upper", "lower")


# ----------------------------------------------------------------------------- identities

@dataclass
class Person:
    """One identity: Market attributes (1 = no, 2 = yes; age 1..4) and render details."""
    attrs: dict
    details: dict
    parent: int = 0  # pid this identity is a look-alike of (0: none)

    def colour(self, prefix, names):
        """The colour name whose attribute ``<prefix><name>`` is 2."""
        return next(n for n in names if self.attrs[prefix + n] == 2)


def _yes(rng, p):
    """Market coding of a random yes/no: 2 with probability ``p``, else 1."""
    return 2 if rng.random() < p else 1


def _set_colour(attrs, prefix, chosen, names):
    """One-hot colour attributes: ``<prefix><chosen>`` = 2, the others 1."""
    for name in names:
        attrs[prefix + name] = 2 if name == chosen else 1


def sample_attributes(rng):
    """The 27 Market-1501 attributes of a random pedestrian."""
    female = rng.random() < 0.45
    attrs = {"gender": 2 if female else 1, "hair": _yes(rng, 0.75 if female else 0.08),
             "age": int(rng.choice([1, 2, 3, 4], p=[0.06, 0.2, 0.62, 0.12])),
             "up": _yes(rng, 0.6), "clothes": 1 if female and rng.random() < 0.3 else 2,
             "hat": _yes(rng, 0.15), "backpack": _yes(rng, 0.25), "bag": _yes(rng, 0.22),
             "handbag": _yes(rng, 0.12)}
    attrs["down"] = _yes(rng, 0.5 if attrs["clothes"] == 1 else 0.3)
    _set_colour(attrs, "up", pick(rng, tuple(UPPER_COLOURS), UPPER_WEIGHTS), UPPER_COLOURS)
    _set_colour(attrs, "down", pick(rng, tuple(LOWER_COLOURS), LOWER_WEIGHTS), LOWER_COLOURS)
    return attrs


def _pattern_colour(rng, base):
    """Of two random pattern colours, the one farther from ``base``."""
    first, second = (PATTERN_COLOURS[i] for i in rng.permutation(len(PATTERN_COLOURS))[:2])
    far = max((first, second), key=lambda c: np.abs(np.subtract(c, base)).sum())
    return jitter_colour(far, rng, 12)


def sample_details(rng, attrs):
    """Render details of a pedestrian with attributes ``attrs`` (JSON-friendly values)."""
    person = Person(attrs, {})
    upper = jitter_colour(UPPER_COLOURS[person.colour("up", UPPER_COLOURS)], rng, 18)
    grey = attrs["age"] == 4 and rng.random() < 0.7
    return {"upper_rgb": upper,
            "lower_rgb": jitter_colour(LOWER_COLOURS[person.colour("down", LOWER_COLOURS)], rng, 18),
            "pattern": pick(rng, PATTERNS, (0.6, 0.25, 0.15)),
            "pattern_rgb": _pattern_colour(rng, upper),
            "pattern_period": float(rng.uniform(0.03, 0.07)),
            "skin_rgb": jitter_colour(pick(rng, SKIN_TONES), rng, 10),
            "hair_rgb": jitter_colour(GREY_HAIR if grey else pick(rng, HAIR_COLOURS), rng, 12),
            "shoe_rgb": jitter_colour(pick(rng, SHOE_COLOURS), rng, 15),
            "hat_rgb": jitter_colour(pick(rng, ITEM_COLOURS), rng, 20),
            "backpack_rgb": jitter_colour(pick(rng, ITEM_COLOURS), rng, 20),
            "bag_rgb": jitter_colour(pick(rng, ITEM_COLOURS), rng, 20),
            "bag_side": pick(rng, (-1, 1)),  # the person's left (-1) or right (+1)
            "build": float(rng.uniform(0.9, 1.12)), "height": float(rng.uniform(0.95, 1.04))}


def random_person(rng):
    """A new random identity."""
    attrs = sample_attributes(rng)
    return Person(attrs, sample_details(rng, attrs))


def person_lookalike(parent, parent_pid, rng):
    """A copy of ``parent`` with one attribute and two detail groups changed."""
    attrs = dict(parent.attrs)
    flip = pick(rng, FLIPPABLE)
    if flip == "upper":
        current = parent.colour("up", UPPER_COLOURS)
        _set_colour(attrs, "up", pick(rng, [c for c in UPPER_COLOURS if c != current]), UPPER_COLOURS)
    elif flip == "lower":
        current = parent.colour("down", LOWER_COLOURS)
        _set_colour(attrs, "down", pick(rng, [c for c in LOWER_COLOURS if c != current]), LOWER_COLOURS)
    else:
        attrs[flip] = 3 - attrs[flip]
    fresh = sample_details(rng, attrs)
    details = dict(parent.details)
    groups = [DETAIL_GROUPS[i] for i in rng.choice(len(DETAIL_GROUPS), 2, replace=False)]
    if flip in ("upper", "lower"):
        groups.append(("upper_rgb", "lower_rgb"))
    for key in (k for group in groups for k in group):
        details[key] = fresh[key]
    return Person(attrs, details, parent=parent_pid)


# ----------------------------------------------------------------------------- geometry

@dataclass
class Pose:
    """Where and how the figure stands in one image. Drawing coordinates are in figure
    heights: x from the body axis (towards the image right, or forward in side view),
    y from the top of the head."""
    view: str
    cx: float  # pixel column of the body axis
    top: float  # pixel row of the top of the head
    fh: float  # figure height in pixels
    facing: int  # side view: +1 faces right, -1 faces left (mirrors x); else +1
    stride: float
    swing: float

    def pt(self, x, y):
        """Pixel coordinates of figure point (x, y)."""
        return (self.cx + self.facing * x * self.fh, self.top + y * self.fh)

    def poly(self, points):
        """Pixel coordinates of a list of figure points."""
        return [self.pt(x, y) for x, y in points]

    def box(self, x0, y0, x1, y1):
        """A pixel bounding box [left, top, right, bottom] of two figure corners."""
        (a, b), (c, d) = self.pt(x0, y0), self.pt(x1, y1)
        return [min(a, c), min(b, d), max(a, c), max(b, d)]

    def px(self, length):
        """A figure length in whole pixels (at least 1)."""
        return max(1, int(round(length * self.fh)))


@dataclass
class Body:
    """Body proportions in figure heights (half widths), for one view."""
    head_r: float
    head_y: float
    neck_y: float
    shoulder_y: float
    waist_y: float
    ankle_y: float
    hand_y: float
    shoulder: float
    waist: float
    hip: float
    arm: float


def body_for(person, view):
    """Body proportions from gender, age and build; narrower from the side."""
    a = person.attrs
    female, r = a["gender"] == 2, HEAD_RADIUS[a["age"]]
    build = person.details["build"] * (1.08 if a["age"] == 4 else 1.0)
    shoulder, waist, hip = (np.array([0.105, 0.085, 0.112]) if female
                            else np.array([0.125, 0.1, 0.1])) * build
    if view == "side":
        shoulder, waist, hip = shoulder * 0.55, waist * 0.62, hip * 0.62
    neck_y = 2.05 * r
    return Body(head_r=r, head_y=1.05 * r, neck_y=neck_y, shoulder_y=neck_y + 0.025,
                waist_y=0.52 if a["age"] == 1 else 0.5, ankle_y=0.955, hand_y=0.56,
                shoulder=float(shoulder), waist=float(waist), hip=float(hip), arm=0.045 * build)


def sample_pose(rng, person, view, h, w):
    """Random placement (scale, position, walking phase) of ``person`` in an h x w image."""
    fh = h * AGE_HEIGHT[person.attrs["age"]] * person.details["height"] * rng.uniform(0.86, 1.02)
    side = view == "side"
    return Pose(view=view, cx=w * (0.5 + float(np.clip(rng.normal(0, 0.06), -0.15, 0.15))),
                top=(h - fh) * rng.uniform(0.15, 0.85) + h * rng.normal(0, 0.02), fh=fh,
                facing=pick(rng, (-1, 1)) if side else 1,
                stride=rng.uniform(0.05, 0.13) if side else rng.uniform(0.0, 0.04),
                swing=rng.uniform(-0.07, 0.09) if side else rng.uniform(0.0, 0.03))


# ----------------------------------------------------------------------------- painting

class PersonPainter:
    """Draws one person with PIL primitives, in view-dependent order."""

    def __init__(self, image, person, pose):
        self.image, self.draw = image, ImageDraw.Draw(image)
        self.a, self.d, self.pose = person.attrs, person.details, pose
        self.b = body_for(person, pose.view)
        self.rgb = {k: tuple(v) for k, v in person.details.items() if k.endswith("_rgb")}

    def paint(self):
        """Draw the whole figure."""
        view = self.pose.view
        if view == "front" and self.a["hair"] == 2:
            self.long_hair()
        if view == "side" and self.a["backpack"] == 2:
            self.backpack()
        self.legs()
        self.torso()
        if view == "back" and self.a["backpack"] == 2:
            self.backpack()
        if self.a["bag"] == 2:
            self.bag()
        if view == "front" and self.a["backpack"] == 2:
            self.backpack()
        self.arms()
        self.head()
        if view != "front" and self.a["hair"] == 2:
            self.long_hair()
        if self.a["hat"] == 2:
            self.hat()

    # -- lower body
    def leg_quads(self):
        """Per leg: (figure quad top-outer, top-inner, bottom-inner, bottom-outer, shade)."""
        b, st = self.b, self.pose.stride
        if self.pose.view == "side":  # far leg first, darker
            return [([(-b.hip, b.waist_y), (b.hip, b.waist_y), (s * st + 0.035, b.ankle_y),
                      (s * st - 0.035, b.ankle_y)], shade) for s, shade in ((-1, 0.8), (1, 1.0))]
        return [([(s * b.hip, b.waist_y), (s * 0.004, b.waist_y), (s * (0.03 + st), b.ankle_y),
                  (s * (0.078 + st), b.ankle_y)], 1.0) for s in (-1, 1)]

    def legs(self):
        """Legs with pants/shorts (or bare under a dress), shoes, then the dress."""
        b, pose = self.b, self.pose
        dress, long_lower = self.a["clothes"] == 1, self.a["down"] == 1
        covered = 0.0 if dress else (1.0 if long_lower else 0.42)
        for quad, shade in self.leg_quads():
            q = pose.poly(quad)
            self.draw.polygon(q, fill=scale_colour(self.rgb["skin_rgb"], shade))
            if covered:
                part = [q[0], q[1], lerp(q[1], q[2], covered), lerp(q[0], q[3], covered)]
                self.draw.polygon(part, fill=scale_colour(self.rgb["lower_rgb"], shade))
            foot_x = (quad[2][0] + quad[3][0]) / 2 + (0.02 if pose.view == "side" else 0.0)
            self.draw.ellipse(pose.box(foot_x - 0.042, b.ankle_y - 0.005, foot_x + 0.042, 1.0),
                              fill=scale_colour(self.rgb["shoe_rgb"], shade))
        if dress:
            hem, flare = (0.93 if long_lower else 0.74), b.hip * 1.45
            self.draw.polygon(pose.poly([(-b.waist, b.waist_y - 0.01), (b.waist, b.waist_y - 0.01),
                                         (flare, hem), (-flare, hem)]), fill=self.rgb["lower_rgb"])

    # -- upper body
    def torso(self):
        """Neck, then the shirt (plain or patterned) with rounded shoulders."""
        b, pose = self.b, self.pose
        self.draw.rectangle(pose.box(-0.025, b.neck_y - 0.02, 0.025, b.shoulder_y + 0.01),
                            fill=self.rgb["skin_rgb"])
        front = b.shoulder * (0.9 if pose.view == "side" else 1.0)
        outline = pose.poly([(-b.shoulder, b.shoulder_y), (front, b.shoulder_y),
                             (b.waist, b.waist_y + 0.015), (-b.waist, b.waist_y + 0.015)])
        self.draw.polygon(outline, fill=self.rgb["upper_rgb"])
        for x in (-b.shoulder, front):
            cx = x - np.sign(x) * 0.02
            self.draw.ellipse(pose.box(cx - 0.03, b.shoulder_y - 0.01, cx + 0.03, b.shoulder_y + 0.05),
                              fill=self.rgb["upper_rgb"])
        if self.d["pattern"] != "plain":
            texture = stripe_texture(self.image.height, self.image.width, self.rgb["upper_rgb"],
                                     self.rgb["pattern_rgb"], self.d["pattern_period"] * pose.fh,
                                     self.d["pattern"], phase=-pose.top)
            fill_polygon_texture(self.image, outline, texture)

    def arm_lines(self):
        """Per arm: (shoulder point, hand point, shade) in figure coordinates."""
        b, swing = self.b, self.pose.swing
        if self.pose.view == "side":
            return [((0.0, b.shoulder_y + 0.02), (swing, b.hand_y), 0.85)]
        return [((s * (b.shoulder - 0.02), b.shoulder_y + 0.02),
                 (s * (b.shoulder + 0.025 + swing), b.hand_y), 1.0) for s in (-1, 1)]

    def arms(self):
        """Sleeves (long or short), bare forearms, hands and, if any, the handbag."""
        pose, short = self.pose, self.a["up"] == 2
        width = pose.px(self.b.arm)
        for shoulder, hand, shade in self.arm_lines():
            s, h = pose.pt(*shoulder), pose.pt(*hand)
            self.draw.line([s, h], fill=scale_colour(self.rgb["skin_rgb"], shade), width=width)
            sleeve_end = lerp(s, h, 0.38) if short else h
            self.draw.line([s, sleeve_end], fill=scale_colour(self.rgb["upper_rgb"], shade), width=width)
            self.draw.ellipse(pose.box(hand[0] - 0.022, hand[1] - 0.018, hand[0] + 0.022, hand[1] + 0.026),
                              fill=self.rgb["skin_rgb"])
        if self.a["handbag"] == 2:
            self.handbag()

    def carry_side(self):
        """Image-side sign (+1 right, -1 left, in figure x) of the bag-carrying side."""
        return -self.d["bag_side"] if self.pose.view == "front" else self.d["bag_side"]

    def handbag(self):
        """A small bag hanging from the hand on the carrying side."""
        lines = self.arm_lines()
        _, (hx, hy), _ = lines[0] if len(lines) == 1 or self.carry_side() < 0 else lines[1]
        colour = self.rgb["bag_rgb"]
        self.draw.line([self.pose.pt(hx, hy), self.pose.pt(hx, hy + 0.03)], fill=colour,
                       width=self.pose.px(0.01))
        self.draw.rectangle(self.pose.box(hx - 0.038, hy + 0.025, hx + 0.038, hy + 0.1),
                            fill=colour, outline=scale_colour(colour, 0.6))

    def bag(self):
        """A shoulder bag: diagonal strap and the bag at the hip."""
        b, pose, colour = self.b, self.pose, self.rgb["bag_rgb"]
        s = 0.0 if pose.view == "side" else self.carry_side()
        x0 = -0.07 if pose.view == "side" else s * b.hip * 0.4
        x1 = 0.05 if pose.view == "side" else s * (b.hip + 0.075)
        self.draw.line([pose.pt(-s * b.shoulder * 0.6, b.shoulder_y + 0.005),
                        pose.pt(s * b.waist, b.waist_y - 0.04)],
                       fill=scale_colour(colour, 0.7), width=pose.px(0.014))
        self.draw.rectangle(pose.box(x0, b.waist_y - 0.06, x1, b.waist_y + 0.08),
                            fill=colour, outline=scale_colour(colour, 0.6))

    def backpack(self):
        """Backpack: the pack from the back, a pack behind the body from the side,
        straps over the shoulders from the front."""
        b, pose = self.b, self.pose
        colour = self.rgb["backpack_rgb"]
        if pose.view == "front":
            for s in (-1, 1):
                self.draw.line([pose.pt(s * b.shoulder * 0.55, b.shoulder_y),
                                pose.pt(s * b.shoulder * 0.62, b.shoulder_y + 0.2)],
                               fill=colour, width=pose.px(0.022))
            return
        if pose.view == "back":
            box = pose.box(-b.shoulder * 0.78, b.shoulder_y + 0.03, b.shoulder * 0.78, b.waist_y - 0.01)
            pocket = pose.box(-b.shoulder * 0.5, b.waist_y - 0.1, b.shoulder * 0.5, b.waist_y - 0.03)
        else:
            box = pose.box(-b.shoulder - 0.09, b.shoulder_y + 0.02, -b.shoulder + 0.01, b.waist_y - 0.02)
            pocket = pose.box(-b.shoulder - 0.1, b.waist_y - 0.12, -b.shoulder - 0.05, b.waist_y - 0.04)
        self.draw.rounded_rectangle(box, radius=pose.px(0.015), fill=colour)
        self.draw.rectangle(pocket, fill=scale_colour(colour, 0.75))

    # -- head
    def head_box(self, sx, top, bottom):
        """Pixel box of a head-centred ellipse: half width ``sx`` head radii, vertical
        extent from ``top`` to ``bottom`` head radii around the head centre."""
        b = self.b
        rx = 0.82 * b.head_r
        return self.pose.box(-sx * rx, b.head_y + top * b.head_r, sx * rx, b.head_y + bottom * b.head_r)

    def head(self):
        """Face and hair cap (front), hair-covered head (back), profile (side)."""
        pose, hair, skin = self.pose, self.rgb["hair_rgb"], self.rgb["skin_rgb"]
        if pose.view == "back":
            self.draw.ellipse(self.head_box(1.0, -1.0, 1.0), fill=hair)
        elif pose.view == "front":
            self.draw.ellipse(self.head_box(1.08, -1.08, 0.35), fill=hair)
            self.draw.ellipse(self.head_box(0.92, -0.6, 1.0), fill=skin)
            self.eyes()
        else:
            box = self.head_box(1.0, -1.0, 1.0)
            self.draw.ellipse(box, fill=skin)
            start, end = (100, 330) if pose.facing > 0 else (210, 80)
            self.draw.chord(self.head_box(1.06, -1.08, 1.0), start, end, fill=hair)

    def eyes(self):
        """Two dark dots, when the head is big enough to show them."""
        b, pose = self.b, self.pose
        if b.head_r * pose.fh < 6:
            return
        r = 0.08 * b.head_r
        for s in (-1, 1):
            x, y = s * 0.33 * b.head_r, b.head_y + 0.1 * b.head_r
            self.draw.ellipse(pose.box(x - r, y - r, x + r, y + r), fill=(30, 25, 25))

    def long_hair(self):
        """Long hair: behind the head and on the shoulders (front), over the upper
        back (back), down the back of the neck (side)."""
        b, pose = self.b, self.pose
        rx, end = 0.82 * b.head_r, b.shoulder_y + 0.1
        if pose.view == "side":
            points = [(-rx, b.head_y), (-0.1 * rx, b.head_y), (-0.3 * rx, end), (-1.15 * rx, end)]
        else:
            wide = 1.25 if pose.view == "front" else 1.1
            points = [(-wide * rx, b.head_y - 0.3 * b.head_r), (wide * rx, b.head_y - 0.3 * b.head_r),
                      (1.3 * rx, end), (-1.3 * rx, end)]
        self.draw.polygon(pose.poly(points), fill=self.rgb["hair_rgb"])

    def hat(self):
        """A crown over the head and a brim (a forward peak in side view)."""
        b, pose, colour = self.b, self.pose, self.rgb["hat_rgb"]
        rx, r = 0.82 * b.head_r, b.head_r
        self.draw.chord(self.head_box(1.06, -1.22, 0.12), 180, 360, fill=colour)
        x0, x1 = (-0.9 * rx, 1.8 * rx) if pose.view == "side" else (-1.3 * rx, 1.3 * rx)
        self.draw.rectangle(pose.box(x0, b.head_y - 0.62 * r, x1, b.head_y - 0.5 * r),
                            fill=scale_colour(colour, 0.8))


# ----------------------------------------------------------------------------- images

def person_background(rng, camera, h, w):
    """Wall and floor in the camera's colours plus random clutter (float image)."""
    image = two_plane_background(rng, camera, h, w, camera.palette[0], camera.palette[1])
    palette = camera.palette + (tuple(rng.uniform(0, 255, 3)),)
    add_rectangles(image, rng, int(rng.integers(3, 9)), palette)
    return image


def render_person(person, camera, rng, size):
    """One image of ``person`` by ``camera`` (size = (H, W))."""
    h, w = size
    image = Image.fromarray(person_background(rng, camera, h, w).astype(np.uint8))
    pose = sample_pose(rng, person, sample_view(rng, camera, VIEWS, VIEW_FOCUS), h, w)
    PersonPainter(image, person, pose).paint()
    pixels = np.array(image, np.float32)
    if rng.random() < OCCLUSION_PROB:
        add_occluder(pixels, rng, (pose.cx - 0.2 * pose.fh, pose.top, pose.cx + 0.2 * pose.fh,
                                   pose.top + pose.fh))
    return camera_blur(Image.fromarray(apply_camera(pixels, camera, rng)), camera, rng)


MAT_HEADER = b"MATLAB 5.0 MAT-file, written by reid_ext SynthPerson (Market-1501 attribute layout)"


def write_attribute_mat(path, people, train_pids, test_pids):
    """Write the identities' attributes like Market-1501's ``market_attribute.mat``:
    struct ``market_attribute`` with fields ``train`` and ``test``, each a struct of the
    27 attributes (1 x N double) and ``image_index`` (1 x N cell of '%04d' ids).
    The header text is fixed (scipy writes the date there) so the bytes are stable."""
    def split(pids):
        fields = {name: np.array([[people[p].attrs[name] for p in pids]], dtype=np.float64)
                  for name in MARKET_ATTRIBUTES}
        index = np.empty((1, len(pids)), dtype=object)
        index[0, :] = [f"{p:04d}" for p in pids]
        fields["image_index"] = index
        return fields

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"market_attribute": {"train": split(train_pids), "test": split(test_pids)}})
    data = buffer.getvalue()
    with open(path, "wb") as f:
        f.write(MAT_HEADER.ljust(116) + data[116:])


# ----------------------------------------------------------------------------- dataset

@DATASET_REGISTRY.register()
class SynthPerson(SyntheticReidDataset):
    """Synthetic pedestrians in Market-1501 layout (``bounding_box_train``, ``query``,
    ``bounding_box_test``; names ``0002_c3s1_000450_00.jpg``), generated on first use
    under ``<root>/SynthPerson/<tag>/``. ``attribute_file`` is a Market-format
    attribute .mat of the train and test identities."""
    dataset_name = "synthperson"
    defaults = {"num_train_ids": 150, "num_test_ids": 100, "imgs_per_id": 12, "num_cams": 6,
                "size": (128, 64)}
    split_dirs = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    name_pattern = re.compile(r"^(\d+)_c(\d)s\d+_\d+_\d+\.jpg$")
    max_cams = 9  # Market names have a one-digit camera
    attribute_name = "synth_person_attribute.mat"

    @property
    def attribute_file(self):
        """Path of the Market-format attribute file (see :func:`write_attribute_mat`)."""
        return osp.join(self.dataset_dir, self.attribute_name)

    def random_identity(self, rng):
        return random_person(rng)

    def lookalike_of(self, parent, parent_pid, rng):
        return person_lookalike(parent, parent_pid, rng)

    def render(self, identity, camera, rng, size):
        return render_person(identity, camera, rng, size)

    def file_name(self, spec):
        return f"{spec.pid:04d}_c{spec.camera}s1_{spec.frame:06d}_00.jpg"

    def write_metadata(self, folder, identities, train_pids, test_pids):
        write_attribute_mat(osp.join(folder, self.attribute_name), identities, train_pids, test_pids)
        table = {}
        for split, pids in (("train", train_pids), ("test", test_pids)):
            for pid in pids:
                person = identities[pid]
                table[f"{pid:04d}"] = {"split": split, "lookalike_of": person.parent,
                                       "upper_colour": person.colour("up", UPPER_COLOURS),
                                       "lower_colour": person.colour("down", LOWER_COLOURS),
                                       **person.attrs, **person.details}
        save_json(table, osp.join(folder, "attributes.json"))
