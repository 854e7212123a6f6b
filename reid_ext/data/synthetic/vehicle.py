"""SynthVehicle: vehicle-like images in VeRi-776 layout.

Every identity has a type (sedan, SUV, van, truck, bus: different proportions and
shapes), a colour (the VeRi colour names) and details that separate vehicles of the same
model and colour: windshield stickers, roof rack, plate colour / position / characters,
wheel style, side stripe, rear decal, window tint. About a third of the identities are
same-model-and-colour look-alikes of an earlier identity (same type, paint, wheels,
lights and tint; new stickers, plate, rack, stripe, decal and spoiler).

Each image varies the viewpoint (front, rear, side, oblique front, oblique rear: a
skewed box of two faces), the camera (each camera mostly sees one viewpoint; colour
cast, brightness, noise, blur), scale and position on a road-like background with
clutter, and sometimes an occluder. Faces are drawn through :class:`Quad` maps from
face coordinates (u, v in [0, 1]) to pixels, so images are drawn at the requested size.
"""
import os.path as osp
import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

import reid_ext.compat  # noqa: F401  (before any fastreid.data import)
from fastreid.data.datasets import DATASET_REGISTRY

from .common import (SyntheticReidDataset, add_occluder, add_rectangles, apply_camera,
                     camera_blur, ellipse_points, jitter_colour, pick, save_json, sample_view,
                     scale_colour, two_plane_background)

TYPES = ("sedan", "suv", "van", "truck", "bus")
TYPE_WEIGHTS = (0.34, 0.24, 0.16, 0.12, 0.14)
COLOURS = {"white": (230, 230, 226), "black": (28, 28, 32), "gray": (120, 122, 126),
           "red": (178, 30, 32), "blue": (36, 66, 150), "yellow": (222, 190, 40),
           "green": (40, 118, 60), "brown": (110, 72, 42), "orange": (226, 120, 30),
           "golden": (190, 160, 90)}
COLOUR_WEIGHTS = (0.24, 0.2, 0.15, 0.1, 0.1, 0.06, 0.05, 0.04, 0.03, 0.03)
DIMENSIONS = {"sedan": (4.7, 1.8, 1.45), "suv": (4.7, 1.9, 1.75), "van": (5.0, 1.9, 2.1),
              "truck": (6.5, 2.3, 2.9), "bus": (11.0, 2.5, 3.1)}  # length, width, height (m)
VIEWS = ("front", "rear", "side", "oblique_front", "oblique_rear")
STICKER_COLOURS = ((240, 240, 240), (40, 110, 200), (60, 170, 80), (230, 200, 40), (200, 50, 50))
PLATE_COLOURS = {"blue": ((30, 70, 180), (240, 240, 240)), "yellow": ((230, 190, 30), (20, 20, 20)),
                 "white": ((235, 235, 235), (20, 20, 20)), "green": ((120, 200, 120), (20, 20, 20))}
RIM_COLOURS = ((190, 190, 195), (40, 40, 42), (200, 170, 100), (235, 235, 235))
CARGO_COLOURS = ((225, 225, 220), (150, 150, 155), (40, 70, 140), (210, 110, 40))
TINTS = {"dark": (35, 40, 50), "medium": (70, 85, 100), "blue": (90, 120, 150)}
GLASS_HIGHLIGHT = 1.35
TYRE = (22, 22, 24)
OCCLUSION_PROB = 0.12
VIEW_FOCUS = 0.55  # traffic cameras mostly see one side of the vehicles
ASPECT_POWER = 0.55  # crops are resized to the image: keep part of the true aspect ratio
MODEL_KEYS = ("body_rgb", "wheel", "lights", "tint", "cargo_rgb")  # kept by look-alikes


# ----------------------------------------------------------------------------- identities

@dataclass
class Vehicle:
    """One identity: type, colour name, body colour and details."""
    vtype: str
    colour: str
    details: dict
    parent: int = 0  # pid this identity is a same-model-and-colour look-alike of

    @property
    def body_rgb(self):
        return tuple(self.details["body_rgb"])


def _sticker(rng):
    """A windshield sticker: position/size in windshield coordinates and a colour."""
    if rng.random() < 0.7:  # inspection stickers: an upper corner
        u = rng.uniform(0.03, 0.16) if rng.random() < 0.5 else rng.uniform(0.74, 0.87)
        v = rng.uniform(0.05, 0.25)
    else:  # low in the middle (tag, toll badge)
        u, v = rng.uniform(0.3, 0.6), rng.uniform(0.6, 0.75)
    return {"u": float(u), "v": float(v),
            "w": float(rng.uniform(0.06, 0.12)), "h": float(rng.uniform(0.12, 0.25)),
            "rgb": jitter_colour(pick(rng, STICKER_COLOURS), rng, 15)}


def _maybe_colour(rng, p):
    """With probability ``p`` a jittered sticker colour (stripe, decal), else None."""
    return jitter_colour(pick(rng, STICKER_COLOURS), rng, 10) if rng.random() < p else None


def sample_details(rng, vtype, colour):
    """Details of one vehicle of type ``vtype`` and colour ``colour``."""
    big = vtype in ("truck", "bus")
    return {"body_rgb": jitter_colour(COLOURS[colour], rng, 12),
            "stickers": [_sticker(rng) for _ in range(int(rng.choice(4, p=[0.25, 0.35, 0.28, 0.12])))],
            "roof_rack": bool(not big and rng.random() < 0.25),
            "plate": {"colour": "yellow" if big else pick(rng, ("blue", "blue", "green", "white")),
                      "offset": pick(rng, (-0.2, 0.0, 0.0, 0.0, 0.2)),
                      "code": [int(c) for c in rng.integers(1, 4, 6)]},
            "wheel": {"rim_rgb": list(pick(rng, RIM_COLOURS)), "spokes": pick(rng, (0, 4, 5, 6)),
                      "hub": float(rng.uniform(0.45, 0.7))},
            "lights": pick(rng, ("round", "rect")),
            "tint": pick(rng, tuple(TINTS)),
            "stripe_rgb": _maybe_colour(rng, 0.2),
            "rear_decal_rgb": _maybe_colour(rng, 0.3),
            "rear_decal_u": float(rng.uniform(0.15, 0.7)),
            "spoiler": bool(vtype in ("sedan", "suv") and rng.random() < 0.2),
            "cargo_rgb": jitter_colour(pick(rng, CARGO_COLOURS), rng, 10)}


def random_vehicle(rng):
    """A new random identity."""
    vtype, colour = pick(rng, TYPES, TYPE_WEIGHTS), pick(rng, tuple(COLOURS), COLOUR_WEIGHTS)
    return Vehicle(vtype, colour, sample_details(rng, vtype, colour))


def vehicle_lookalike(parent, parent_pid, rng):
    """Same type, colour and model details as ``parent``; new instance details."""
    details = sample_details(rng, parent.vtype, parent.colour)
    details.update({k: parent.details[k] for k in MODEL_KEYS})
    return Vehicle(parent.vtype, parent.colour, details, parent=parent_pid)


# ----------------------------------------------------------------------------- geometry

class Quad:
    """Bilinear map from face coordinates (u right, v down, both in [0, 1]) to the pixel
    quadrilateral with corners (top-left, top-right, bottom-right, bottom-left)."""

    def __init__(self, tl, tr, br, bl):
        self.corners = np.array([tl, tr, br, bl], float)

    def xy(self, points):
        """(n, 2) pixel array of face points (sequence of (u, v))."""
        uv = np.asarray(points, float).reshape(-1, 2)
        u, v = uv[:, :1], uv[:, 1:]
        tl, tr, br, bl = self.corners
        return (1 - u) * (1 - v) * tl + u * (1 - v) * tr + u * v * br + (1 - u) * v * bl

    def map(self, points):
        """Face points as a flat pixel list [x0, y0, x1, y1, ...] (what PIL draws)."""
        return self.xy(points).ravel().tolist()

    def rect(self, u0, v0, u1, v1):
        """Pixel polygon of the face rectangle [u0, u1] x [v0, v1]."""
        return self.map([(u0, v0), (u1, v0), (u1, v1), (u0, v1)])

    def sub(self, points):
        """The Quad of a face sub-quadrilateral given by its four face corners."""
        return Quad(*self.xy(points))

    def circle(self, u, v, radius, n=18):
        """Pixel polygon of a circle of ``radius`` pixels centred at face point (u, v)."""
        tl, tr, _, bl = self.corners
        su, sv = np.linalg.norm(tr - tl), np.linalg.norm(bl - tl)
        return self.map(ellipse_points(u, v, radius / max(su, 1e-6), radius / max(sv, 1e-6), n))

    @property
    def height(self):
        """Pixel length of the left edge."""
        return float(np.linalg.norm(self.corners[3] - self.corners[0]))


def vehicle_extent(vtype, view):
    """(width, height) of the vehicle's image box in metres-like units, before the
    aspect compression of :data:`ASPECT_POWER`."""
    length, width, height = DIMENSIONS[vtype]
    if view in ("front", "rear"):
        return width, height
    if view == "side":
        return length, height
    return 0.55 * width + 0.7 * length, 1.05 * height


def place_faces(rng, vehicle, view, h, w):
    """Face name -> :class:`Quad` for one image, and the vehicle's pixel box.

    ``front``/``rear``/``side`` are one rectangle; oblique views are a skewed box: the
    front (or rear) face as a rectangle, the side face as a quadrilateral receding to a
    shorter far edge. ``side`` faces run from the vehicle's front (u=0) to its rear."""
    ew, eh = vehicle_extent(vehicle.vtype, view)
    aspect = (ew / eh) ** ASPECT_POWER
    fill = rng.uniform(0.74, 0.94)
    bw = min(fill * w, fill * h * aspect)
    bh = bw / aspect
    x0 = (w - bw) * rng.uniform(0.2, 0.8)
    y0 = (h - bh) * rng.uniform(0.3, 0.9)
    x1, y1 = x0 + bw, y0 + bh
    box = (x0, y0, x1, y1)
    if view in ("front", "rear", "side"):
        if view == "side" and rng.random() < 0.5:  # facing right: mirror the side face
            return {view: Quad((x1, y0), (x0, y0), (x0, y1), (x1, y1))}, box
        return {view: Quad((x0, y0), (x1, y0), (x1, y1), (x0, y1))}, box
    length, width, _ = DIMENSIONS[vehicle.vtype]
    split = bw * 0.55 * width / (0.55 * width + 0.7 * length)
    shrink = bh * rng.uniform(0.06, 0.12)
    end = "front" if view == "oblique_front" else "rear"
    if rng.random() < 0.5:  # end face on the left, side receding to the right
        xe = x0 + split
        faces = {end: Quad((x0, y0), (xe, y0), (xe, y1), (x0, y1))}
        near, far = ((xe, y0), (xe, y1)), ((x1, y0 + shrink), (x1, y1 - shrink))
    else:
        xe = x1 - split
        faces = {end: Quad((xe, y0), (x1, y0), (x1, y1), (xe, y1))}
        near, far = ((xe, y0), (xe, y1)), ((x0, y0 + shrink), (x0, y1 - shrink))
    # side u=0 is the vehicle's front: next to the end face for front views, far for rear
    first, last = (near, far) if end == "front" else (far, near)
    faces["side"] = Quad(first[0], last[0], last[1], first[1])
    return faces, box


# ----------------------------------------------------------------------------- side face

def _bus_windows():
    """A row of eight side windows and the glass front door."""
    row = [[(u, 0.12), (u + 0.095, 0.12), (u + 0.095, 0.45), (u, 0.45)]
           for u in np.arange(0.11, 0.95, 0.107)]
    return row + [[(0.03, 0.14), (0.085, 0.14), (0.085, 0.78), (0.03, 0.78)]]


# Side faces (u from the front, v from the roof): body outline (trucks: plus cargo box and
# chassis), window panes, wheel positions (u), axle height (v), wheel radius (in face
# heights), roof-rack span (u0, u1, roof v; None: no rack possible), stripe height (v).
SIDE_SHAPES = {
    "sedan": {"body": [(0, 0.52), (0.02, 0.42), (0.24, 0.37), (0.36, 0.08), (0.68, 0.06), (0.84, 0.35),
                       (0.99, 0.4), (1, 0.55), (0.99, 0.8), (0.01, 0.8)],
              "panes": [[(0.38, 0.13), (0.51, 0.12), (0.51, 0.36), (0.29, 0.37)],
                        [(0.54, 0.12), (0.66, 0.11), (0.78, 0.35), (0.54, 0.36)]],
              "wheels": (0.19, 0.81), "axle": 0.8, "radius": 0.19, "roof": (0.38, 0.66, 0.07),
              "stripe": 0.58},
    "suv": {"body": [(0, 0.5), (0.02, 0.36), (0.22, 0.32), (0.31, 0.05), (0.96, 0.04), (1, 0.12),
                     (1, 0.8), (0, 0.8)],
            "panes": [[(0.33, 0.1), (0.5, 0.1), (0.5, 0.32), (0.26, 0.33)],
                      [(0.53, 0.1), (0.74, 0.1), (0.74, 0.32), (0.53, 0.32)],
                      [(0.77, 0.1), (0.95, 0.09), (0.96, 0.31), (0.77, 0.32)]],
            "wheels": (0.18, 0.8), "axle": 0.8, "radius": 0.2, "roof": (0.33, 0.94, 0.05),
            "stripe": 0.55},
    "van": {"body": [(0, 0.45), (0.03, 0.3), (0.14, 0.04), (1, 0.03), (1, 0.82), (0, 0.82)],
            "panes": [[(0.05, 0.3), (0.15, 0.09), (0.25, 0.09), (0.25, 0.33)],
                      [(0.29, 0.09), (0.5, 0.09), (0.5, 0.33), (0.29, 0.33)],
                      [(0.53, 0.09), (0.74, 0.09), (0.74, 0.33), (0.53, 0.33)],
                      [(0.77, 0.09), (0.97, 0.09), (0.97, 0.33), (0.77, 0.33)]],
            "wheels": (0.17, 0.83), "axle": 0.82, "radius": 0.16, "roof": (0.18, 0.96, 0.03),
            "stripe": 0.55},
    "truck": {"body": [(0, 0.32), (0.03, 0.12), (0.25, 0.12), (0.25, 0.82), (0, 0.82)],
              "cargo": [(0.27, 0.0), (1, 0.0), (1, 0.74), (0.27, 0.74)],
              "chassis": [(0.25, 0.72), (1, 0.72), (1, 0.8), (0.25, 0.8)],
              "panes": [[(0.04, 0.17), (0.21, 0.17), (0.21, 0.4), (0.02, 0.4)]],
              "wheels": (0.13, 0.7, 0.86), "axle": 0.82, "radius": 0.14, "roof": None,
              "stripe": 0.6},
    "bus": {"body": [(0, 0.08), (0.02, 0.02), (1, 0.02), (1, 0.86), (0, 0.86)],
            "panes": _bus_windows(), "wheels": (0.17, 0.8), "axle": 0.86, "radius": 0.12,
            "roof": None, "stripe": 0.58},
}


def draw_wheel(draw, quad, u, v, radius, wheel):
    """A tyre with a rim of the identity's colour and spoke style."""
    draw.polygon(quad.circle(u, v, radius), fill=TYRE)
    rim = radius * wheel["hub"]
    draw.polygon(quad.circle(u, v, rim), fill=tuple(wheel["rim_rgb"]))
    centre = tuple(quad.xy([(u, v)])[0])
    for k in range(wheel["spokes"]):
        t = 2 * np.pi * k / wheel["spokes"]
        end = (centre[0] + rim * np.cos(t), centre[1] + rim * np.sin(t))
        draw.line([centre, end], fill=TYRE, width=max(1, int(rim / 4)))


def draw_side(draw, quad, vehicle, shade=1.0):
    """The vehicle's side: body (and cargo box), windows, stripe, lights, rack, wheels."""
    shape, d = SIDE_SHAPES[vehicle.vtype], vehicle.details
    body = scale_colour(vehicle.body_rgb, shade)
    glass = scale_colour(TINTS[d["tint"]], shade)
    if "cargo" in shape:
        draw.polygon(quad.map(shape["cargo"]), fill=scale_colour(d["cargo_rgb"], shade))
        draw.polygon(quad.map(shape["chassis"]), fill=scale_colour(TYRE, 2.0))
    draw.polygon(quad.map(shape["body"]), fill=body)
    for pane in shape["panes"]:
        draw.polygon(quad.map(pane), fill=glass)
    if d["stripe_rgb"]:
        s = shape["stripe"]
        draw.polygon(quad.rect(0.02, s, 0.98, s + 0.04), fill=scale_colour(d["stripe_rgb"], shade))
    draw.polygon(quad.rect(0.0, 0.44, 0.025, 0.52), fill=(235, 225, 170))
    draw.polygon(quad.rect(0.975, 0.44, 1.0, 0.52), fill=(200, 30, 30))
    if d["roof_rack"] and shape["roof"]:
        u0, u1, v = shape["roof"]
        draw.polygon(quad.rect(u0, v - 0.05, u1, v - 0.025), fill=scale_colour((60, 60, 60), shade))
        for u in (u0 + 0.03, u1 - 0.03):
            draw.polygon(quad.rect(u - 0.008, v - 0.03, u + 0.008, v), fill=(60, 60, 60))
    radius = shape["radius"] * quad.height
    for u in shape["wheels"]:
        draw_wheel(draw, quad, u, shape["axle"], radius, d["wheel"])


# ----------------------------------------------------------------------------- end faces

# top of the cabin (v), belt line under the windshield (v), cabin inset at the roof and
# at the belt (u), light band (v)
END_SHAPES = {"sedan": (0.06, 0.44, 0.17, 0.06, 0.52), "suv": (0.04, 0.4, 0.12, 0.04, 0.5),
              "van": (0.03, 0.5, 0.06, 0.02, 0.58), "truck": (0.2, 0.55, 0.04, 0.02, 0.64),
              "bus": (0.02, 0.58, 0.02, 0.0, 0.66)}


def draw_plate(draw, quad, plate, v0=0.7, v1=0.79):
    """The plate: its colour, position and six character bars of identity widths."""
    ground, ink = PLATE_COLOURS[plate["colour"]]
    u0 = 0.5 + plate["offset"] - 0.13
    draw.polygon(quad.rect(u0, v0, u0 + 0.26, v1), fill=ground)
    cell = 0.22 / len(plate["code"])
    for k, code in enumerate(plate["code"]):
        a = u0 + 0.02 + k * cell
        draw.polygon(quad.rect(a, v0 + 0.015, a + cell * (0.25 + 0.2 * code), v1 - 0.015), fill=ink)


def draw_lamps(draw, quad, style, v, colour):
    """Two lamps (round or rectangular) in the light band at height ``v``."""
    for u0 in (0.04, 0.76):
        if style == "round":
            r = 0.045 * quad.height
            for u in (u0 + 0.05, u0 + 0.15):
                draw.polygon(quad.circle(u, v + 0.04, r), fill=colour)
        else:
            draw.polygon(quad.rect(u0, v, u0 + 0.2, v + 0.075), fill=colour)


def draw_cabin(draw, quad, vehicle, shade, glass):
    """Roof-to-belt cabin and its window; returns the window's :class:`Quad`."""
    roof, belt, top_in, low_in, _ = END_SHAPES[vehicle.vtype]
    body = scale_colour(vehicle.body_rgb, shade)
    draw.polygon(quad.map([(top_in, roof), (1 - top_in, roof), (1 - low_in, belt), (low_in, belt)]),
                 fill=body)
    m = 0.035
    window = quad.sub([(top_in + m, roof + m), (1 - top_in - m, roof + m), (1 - low_in - m, belt - 0.015),
                       (low_in + m, belt - 0.015)])
    draw.polygon(window.rect(0, 0, 1, 1), fill=glass)
    draw.polygon(window.map([(0.08, 0.12), (0.3, 0.12), (0.12, 0.8), (0.05, 0.8)]),
                 fill=scale_colour(glass, GLASS_HIGHLIGHT))
    if vehicle.details["roof_rack"]:
        draw.polygon(quad.rect(top_in, roof - 0.05, 1 - top_in, roof - 0.02), fill=(60, 60, 60))
    return window


def draw_end_body(draw, quad, vehicle, shade):
    """Lower body, bumper and the wheels showing under it (front and rear alike)."""
    _, belt, _, _, _ = END_SHAPES[vehicle.vtype]
    draw.polygon(quad.rect(0, belt, 1, 0.9), fill=scale_colour(vehicle.body_rgb, shade))
    draw.polygon(quad.rect(0, 0.86, 1, 0.9), fill=scale_colour((45, 45, 48), shade))
    for u in (0.07, 0.79):
        draw.polygon(quad.rect(u, 0.9, u + 0.14, 1.0), fill=TYRE)


def draw_front(draw, quad, vehicle, shade=1.0):
    """The front: windshield with the identity's stickers, head lamps, grille, plate."""
    d = vehicle.details
    _, belt, _, _, light_v = END_SHAPES[vehicle.vtype]
    if vehicle.vtype == "truck":  # the cargo box shows above the cab
        draw.polygon(quad.rect(-0.04, 0, 1.04, 0.25), fill=scale_colour(d["cargo_rgb"], shade))
    draw_end_body(draw, quad, vehicle, shade)
    window = draw_cabin(draw, quad, vehicle, shade, scale_colour(TINTS[d["tint"]], shade))
    for s in d["stickers"]:
        draw.polygon(window.rect(s["u"], s["v"], s["u"] + s["w"], s["v"] + s["h"]),
                     fill=tuple(s["rgb"]))
    for u in (-0.05, 0.98):  # mirrors
        draw.polygon(quad.rect(u, belt - 0.09, u + 0.07, belt - 0.02),
                     fill=scale_colour(vehicle.body_rgb, 0.7))
    draw_lamps(draw, quad, d["lights"], light_v, (240, 235, 200))
    draw.polygon(quad.rect(0.32, light_v, 0.68, light_v + 0.1), fill=scale_colour((40, 40, 44), shade))
    draw_plate(draw, quad, d["plate"])


def draw_rear(draw, quad, vehicle, shade=1.0):
    """The rear: rear window (or the truck's cargo doors), tail lamps, decal, plate."""
    d = vehicle.details
    _, belt, _, _, light_v = END_SHAPES[vehicle.vtype]
    if vehicle.vtype == "truck":
        cargo = scale_colour(d["cargo_rgb"], shade)
        draw.polygon(quad.rect(-0.04, 0, 1.04, 0.86), fill=cargo)
        draw.line(quad.map([(0.5, 0.03), (0.5, 0.84)]), fill=scale_colour(cargo, 0.6),
                  width=max(1, int(quad.height / 60)))
        draw.polygon(quad.rect(0, 0.86, 1, 0.9), fill=scale_colour((45, 45, 48), shade))
    else:
        draw_end_body(draw, quad, vehicle, shade)
        draw_cabin(draw, quad, vehicle, shade, scale_colour(TINTS[d["tint"]], 0.8 * shade))
        if d["spoiler"]:
            draw.polygon(quad.rect(0.05, belt - 0.02, 0.95, belt + 0.02),
                         fill=scale_colour(vehicle.body_rgb, 0.6))
    if d["rear_decal_rgb"]:
        u = d["rear_decal_u"]
        draw.polygon(quad.rect(u, light_v - 0.08, u + 0.15, light_v - 0.02),
                     fill=tuple(d["rear_decal_rgb"]))
    draw_lamps(draw, quad, d["lights"], light_v, (200, 30, 30))
    draw_plate(draw, quad, d["plate"])


FACE_PAINTERS = {"front": draw_front, "rear": draw_rear, "side": draw_side}


# ----------------------------------------------------------------------------- images

def road_background(rng, camera, h, w):
    """Buildings/greenery above the camera's horizon, a road with lane marks below."""
    road = np.full(3, 60 + 0.4 * np.mean(camera.palette[1]))
    image = two_plane_background(rng, camera, h, w, camera.palette[0], road)
    add_rectangles(image, rng, int(rng.integers(2, 7)), camera.palette, max_frac=0.35,
                   y_range=(0.0, camera.horizon))
    add_lane_mark(image, rng, int(h * camera.horizon))
    return image


def add_lane_mark(image, rng, first_row):
    """A dashed, slanted white or yellow lane mark from ``first_row`` down."""
    h, w = image.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w]
    centre = rng.uniform(0, w) + rng.uniform(-0.8, 0.8) * (rows - first_row)
    dashes = (rows // max(2, h // 16)) % 2 == 0
    mask = (np.abs(cols - centre) < max(0.5, 0.01 * w)) & dashes & (rows >= first_row)
    image[mask] = pick(rng, ((220, 220, 215), (215, 185, 60)))


def draw_vehicle(image, vehicle, faces, box):
    """A shadow under the vehicle, then its faces (the side face darker when the end
    face is also visible)."""
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = box
    draw.ellipse([x0 - 0.03 * (x1 - x0), y1 - 0.06 * (y1 - y0), x1 + 0.03 * (x1 - x0),
                  y1 + 0.05 * (y1 - y0)], fill=(25, 25, 28))
    oblique = len(faces) > 1
    for name in ("side", "front", "rear"):
        if name in faces:
            FACE_PAINTERS[name](draw, faces[name], vehicle, 0.82 if oblique and name == "side" else 1.0)


def render_vehicle(vehicle, camera, rng, size):
    """One image of ``vehicle`` by ``camera`` (size = (H, W))."""
    h, w = size
    image = Image.fromarray(road_background(rng, camera, h, w).astype(np.uint8))
    view = sample_view(rng, camera, VIEWS, VIEW_FOCUS)
    faces, box = place_faces(rng, vehicle, view, h, w)
    draw_vehicle(image, vehicle, faces, box)
    pixels = np.array(image, np.float32)
    if rng.random() < OCCLUSION_PROB:
        add_occluder(pixels, rng, box)
    return camera_blur(Image.fromarray(apply_camera(pixels, camera, rng)), camera, rng)


# ----------------------------------------------------------------------------- dataset

@DATASET_REGISTRY.register()
class SynthVehicle(SyntheticReidDataset):
    """Synthetic vehicles in VeRi layout (``image_train``, ``image_query``,
    ``image_test``; names ``0002_c003_00000450_0.jpg``), generated on first use under
    ``<root>/SynthVehicle/<tag>/``, with ``attributes.json`` (type, colour, details)."""
    dataset_name = "synthvehicle"
    defaults = {"num_train_ids": 150, "num_test_ids": 100, "imgs_per_id": 12, "num_cams": 8,
                "size": (128, 128)}
    split_dirs = {"train": "image_train", "query": "image_query", "gallery": "image_test"}
    name_pattern = re.compile(r"^(\d+)_c(\d{3})_\d+_\d+\.jpg$")
    max_cams = 20  # fastreid's VeRi loader accepts cameras 1..20

    def random_identity(self, rng):
        return random_vehicle(rng)

    def lookalike_of(self, parent, parent_pid, rng):
        return vehicle_lookalike(parent, parent_pid, rng)

    def render(self, identity, camera, rng, size):
        return render_vehicle(identity, camera, rng, size)

    def file_name(self, spec):
        return f"{spec.pid:04d}_c{spec.camera:03d}_{spec.frame:08d}_0.jpg"

    def write_metadata(self, folder, identities, train_pids, test_pids):
        table = {f"{pid:04d}": {"split": split, "type": identities[pid].vtype,
                                "colour": identities[pid].colour,
                                "lookalike_of": identities[pid].parent, **identities[pid].details}
                 for split, pids in (("train", train_pids), ("test", test_pids)) for pid in pids}
        save_json(table, osp.join(folder, "attributes.json"))
