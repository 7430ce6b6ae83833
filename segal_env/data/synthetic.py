"""Procedural street scenes: the built-in data set that needs no download.

Why it looks the way it does: region-level active learning only pays off when the data is like real
driving data -- a few classes (road, building, sky) cover most pixels while small objects (poles,
signs, pedestrians, bicyclists) are rare, and those rare classes are hard because their colours are
shared with common classes and only shape and context tell them apart. Each scene is a perspective
street (horizon, vanishing point, road and sidewalk wedges, a row of facades) with objects placed and
sized by depth, drawn far-to-near so near objects occlude far ones, then textured, lit unevenly and
blurred slightly like a camera.

Drawing is vectorised over a chunk of images: every object slot is one boolean mask computed from
coordinate grids for all images of the chunk at once. Each mask paints a "layer" index per pixel; the
layer tables (class, colour) are looked up once at the end, then noise, light and blur are applied.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from ..runtime import torch_threads
from .base import SegDataset
from .io import IGNORE_INDEX, rescale_dataset

SYNTHETIC_CLASSES = (
    "sky",
    "building",
    "road",
    "sidewalk",
    "vegetation",
    "car",
    "pedestrian",
    "pole",
    "sign",
    "fence",
    "bicyclist",
)
SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, CAR, PEDESTRIAN, POLE, SIGN, FENCE, BICYCLIST = range(11)
VOID = IGNORE_INDEX

SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}  # part of every chunk's seed: independent streams per split
CHUNK = 32  # images drawn together; small enough that a [CHUNK, H, W] float mask stays in cache

# Shared palettes (RGB in [0, 1]) are the point: rare classes reuse the colours of common ones.
GREYS = [(0.35, 0.35, 0.36), (0.5, 0.5, 0.5), (0.62, 0.62, 0.6), (0.75, 0.74, 0.72)]
FACADES = GREYS + [(0.72, 0.65, 0.52), (0.6, 0.36, 0.28), (0.85, 0.83, 0.78), (0.55, 0.5, 0.42)]
VIVID = [(0.78, 0.14, 0.12), (0.15, 0.28, 0.7), (0.85, 0.75, 0.15), (0.9, 0.9, 0.9), (0.15, 0.5, 0.28)]
CAR_PAINT = GREYS + VIVID + [(0.08, 0.08, 0.1), (0.08, 0.08, 0.1), (0.9, 0.9, 0.9)]
CLOTHES = [(0.08, 0.08, 0.1), (0.2, 0.22, 0.35), (0.5, 0.5, 0.5), (0.45, 0.3, 0.2)] + VIVID
SKIN = [(0.85, 0.68, 0.55), (0.6, 0.42, 0.3), (0.4, 0.28, 0.2)]
LEAVES = [(0.2, 0.38, 0.14), (0.3, 0.45, 0.18), (0.42, 0.42, 0.18), (0.14, 0.28, 0.12)]
BROWNS = [(0.45, 0.35, 0.25), (0.35, 0.27, 0.2)] + GREYS[:2]
TYRES = [(0.07, 0.07, 0.08), (0.15, 0.15, 0.16)]
ANY = GREYS + FACADES + VIVID + LEAVES

# Per-class pixel noise amplitude (texture): foliage is busy, sky and road are smooth.
NOISE_AMPLITUDE = {
    SKY: 0.02,
    BUILDING: 0.05,
    ROAD: 0.06,
    SIDEWALK: 0.07,
    VEGETATION: 0.3,
    CAR: 0.04,
    PEDESTRIAN: 0.06,
    POLE: 0.04,
    SIGN: 0.04,
    FENCE: 0.08,
    BICYCLIST: 0.06,
    VOID: 0.1,
}


class _Canvas:
    """One chunk of scenes being drawn: coordinate grids, the per-pixel layer index and the layer tables."""

    def __init__(self, n: int, height: int, width: int, gen: torch.Generator) -> None:
        self.n, self.height, self.width, self.gen = n, height, width, gen
        self.aspect = width / height
        self.pixel = 1.0 / height  # one pixel in "height units": every coordinate is y in [0, 1], x in [0, W/H]
        self.y = ((torch.arange(height, dtype=torch.float32) + 0.5) / height).view(1, height, 1)
        self.x = ((torch.arange(width, dtype=torch.float32) + 0.5) / height).view(1, 1, width)
        self.layer = torch.zeros((n, height, width), dtype=torch.int16)
        self.classes: list[torch.Tensor] = []
        self.colours: list[torch.Tensor] = []

    # random draws -----------------------------------------------------------------------------
    def uniform(self, low: float, high: float, *shape: int) -> torch.Tensor:
        return low + (high - low) * torch.rand((self.n, *shape), generator=self.gen)

    def chance(self, p: float, *shape: int) -> torch.Tensor:
        return torch.rand((self.n, *shape), generator=self.gen) < p

    def sign(self, *shape: int) -> torch.Tensor:
        return torch.where(self.chance(0.5, *shape), 1.0, -1.0)

    def colour(self, palette: list[tuple[float, float, float]], jitter: float = 0.05) -> torch.Tensor:
        """[n, 3] colours picked from a palette with per-object jitter (colour constancy is not free)."""
        table = torch.tensor(palette, dtype=torch.float32)
        pick = torch.randint(len(palette), (self.n,), generator=self.gen)
        return (table[pick] + jitter * torch.randn((self.n, 3), generator=self.gen)).clamp(0, 1)

    # shapes: parameters are [n] tensors, masks are [n, H, W] -----------------------------------------
    @staticmethod
    def col(v: torch.Tensor) -> torch.Tensor:
        return v.view(-1, 1, 1)

    def rect(self, x0, x1, y0, y1) -> torch.Tensor:
        c = self.col
        return ((self.x >= c(x0)) & (self.x < c(x1))) & ((self.y >= c(y0)) & (self.y < c(y1)))

    def ellipse(self, cx, cy, rx, ry) -> torch.Tensor:
        c = self.col
        return ((self.x - c(cx)) / c(rx)) ** 2 + ((self.y - c(cy)) / c(ry)) ** 2 <= 1.0

    def superellipse(self, cx, cy, rx, ry, power) -> torch.Tensor:
        """|dx/rx|^p + |dy/ry|^p <= 1: a diamond for p=1, an ellipse for p=2, a rounded box for large p."""
        c = self.col
        return ((self.x - c(cx)) / c(rx)).abs() ** c(power) + ((self.y - c(cy)) / c(ry)).abs() ** c(power) <= 1.0

    def ring(self, cx, cy, radius, thickness) -> torch.Tensor:
        c = self.col
        squared = (self.x - c(cx)) ** 2 + (self.y - c(cy)) ** 2
        inner, outer = (radius - thickness).clamp(min=0) ** 2, (radius + thickness) ** 2
        return (squared >= c(inner)) & (squared <= c(outer))

    def segment(self, ax, ay, bx, by, thickness) -> torch.Tensor:
        """Pixels within ``thickness`` of the segment a-b (thin bars: legs, frames)."""
        c = self.col
        dx, dy = c(bx - ax), c(by - ay)
        length2 = dx * dx + dy * dy + 1e-9
        rel_x, rel_y = self.x - c(ax), self.y - c(ay)  # [n, 1, W] and [n, H, 1]
        t = (rel_x * (dx / length2) + rel_y * (dy / length2)).clamp_(0, 1)  # position along the segment
        off_x = (t * dx).neg_().add_(rel_x).square_()
        off_y = t.mul_(dy).neg_().add_(rel_y).square_()
        return off_x.add_(off_y) <= c(thickness) ** 2

    def thin(self, half_width: torch.Tensor) -> torch.Tensor:
        """Half widths never below half a pixel, so thin objects stay visible at any resolution."""
        return half_width.clamp(min=0.5 * self.pixel)

    # painting ----------------------------------------------------------------------------------
    def paint(self, mask: torch.Tensor, cls: int, colour: torch.Tensor) -> None:
        # layer = k where mask else layer, written as arithmetic: several times faster than masked_fill_ on CPU
        self.layer.sub_(self.layer.sub(len(self.classes)).mul_(mask))
        self.classes.append(torch.full((self.n,), cls, dtype=torch.uint8))
        self.colours.append(colour)


def _draw_street(cv: _Canvas) -> dict[str, torch.Tensor]:
    """Sky, facades, road and sidewalk wedges; returns the per-image street geometry ([n, 1, 1] each)."""
    c = cv.col
    horizon = cv.uniform(0.34, 0.46)
    vanish_x = cv.aspect * cv.uniform(0.38, 0.62)
    road_top = cv.uniform(0.01, 0.03)  # road half width at the horizon
    road_spread = cv.uniform(1.1, 1.5)  # half width grows this much per unit of depth below the horizon
    walk_spread = road_spread + cv.uniform(0.25, 0.5)
    depth = cv.y - c(horizon)  # > 0 below the horizon; objects are sized proportionally to it
    dist = (cv.x - c(vanish_x)).abs()

    overcast = cv.uniform(0, 1).view(-1, 1)
    sky = (1 - overcast) * torch.tensor([0.45, 0.62, 0.9]) + overcast * torch.tensor([0.78, 0.8, 0.82])
    cv.paint(torch.ones_like(cv.layer, dtype=torch.bool), SKY, sky)

    n_facades = 6
    edges = torch.sort(cv.uniform(0, cv.aspect, n_facades - 1), dim=1).values
    edges = torch.cat([torch.full((cv.n, 1), -1.0), edges, torch.full((cv.n, 1), cv.aspect + 1)], dim=1)
    tops = horizon.view(-1, 1) - cv.uniform(0.03, 0.34, n_facades)
    park = cv.chance(0.12, n_facades)  # an occasional gap in the facades filled by a park / hedge
    for k in range(n_facades):
        mask = cv.rect(edges[:, k], edges[:, k + 1], tops[:, k].clamp(min=0), torch.full((cv.n,), 2.0))
        facade = mask & ~c(park[:, k])
        wall = cv.colour(FACADES)
        cv.paint(facade, BUILDING, wall)
        # windows: a separable grid of darker panes with per-facade spacing
        columns = torch.frac(cv.x * c(cv.uniform(10, 22)) + c(cv.uniform(0, 1))) < 0.55
        rows = torch.frac(cv.y * c(cv.uniform(7, 14))) < 0.5
        glass = wall * cv.uniform(0.3, 0.65).view(-1, 1) + torch.tensor([0.0, 0.02, 0.06])
        cv.paint(facade & (columns & rows) & c(cv.chance(0.75)), BUILDING, glass)
        cv.paint(mask & c(park[:, k]) & (cv.y > c(horizon - 0.08)), VEGETATION, cv.colour(LEAVES))

    walk_edge = c(road_top) + depth * c(walk_spread)
    road_edge = c(road_top) + depth * c(road_spread)
    walk = (depth > 0) & (dist < walk_edge)
    paving = cv.colour([(0.62, 0.6, 0.56), (0.6, 0.47, 0.42), (0.5, 0.5, 0.47)])
    cv.paint(walk, SIDEWALK, paving)
    tile = c(cv.uniform(14, 30))
    joints = (torch.frac(cv.x * tile) < 0.08) | (torch.frac(cv.y * tile * 1.5) < 0.1)
    cv.paint(walk & joints, SIDEWALK, paving * cv.uniform(0.75, 0.9).view(-1, 1))
    road = (depth > 0) & (dist < road_edge)
    cv.paint(road, ROAD, cv.colour([(0.3, 0.3, 0.31), (0.4, 0.4, 0.4), (0.36, 0.35, 0.33)], jitter=0.03))
    # dashed lane markings: dashes equally spaced in the world are spaced like 1/depth in the image
    lane = c(cv.uniform(-0.35, 0.35)) * road_edge  # a lane line at a fixed fraction of the road width
    marking = road & ((cv.x - c(vanish_x) - lane).abs() < depth * 0.025 + 0.15 * cv.pixel)
    marking &= torch.frac(c(cv.uniform(0.1, 0.2)) / depth.clamp(min=1e-3) + c(cv.uniform(0, 1))) < 0.5
    cv.paint(marking & c(cv.chance(0.7)), ROAD, cv.colour([(0.85, 0.85, 0.82), (0.85, 0.75, 0.2)], jitter=0.03))
    return {
        "horizon": c(horizon),
        "vanish_x": c(vanish_x),
        "road_top": c(road_top),
        "road_spread": c(road_spread),
        "walk_spread": c(walk_spread),
    }


def _street_point(geo: dict, depth: torch.Tensor, lateral: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image (x, y) of a ground point at ``depth`` below the horizon; lateral 0 = road centre line,
    +-1 = road edge, +-(walk_spread/road_spread) = outer sidewalk edge (signed by side)."""
    half_road = geo["road_top"].view(-1) + depth * geo["road_spread"].view(-1)
    return geo["vanish_x"].view(-1) + lateral * half_road, geo["horizon"].view(-1) + depth


def _walk_lateral(cv: _Canvas, geo: dict, side: torch.Tensor, inner: float, outer: float) -> torch.Tensor:
    """A lateral position on the sidewalk, between ``inner`` and ``outer`` of its width."""
    walk_ratio = (geo["walk_spread"] / geo["road_spread"]).view(-1)
    return side * (1 + (walk_ratio - 1) * cv.uniform(inner, outer))


def _draw_fences(cv: _Canvas, geo: dict) -> None:
    """Slatted fences along the facade line; the gaps show the facade behind (fine structure to segment)."""
    c = cv.col
    dist = cv.x - geo["vanish_x"]
    base_depth = ((dist.abs() - geo["road_top"]) / geo["walk_spread"]).clamp(min=1e-3)
    base_y = geo["horizon"] + base_depth
    for side in (-1.0, 1.0):
        start = cv.uniform(0.05, 0.4)
        along = (dist * side > c(start)) & (dist * side < c(start + cv.uniform(0.1, 0.45)))
        height = base_depth * c(cv.uniform(0.45, 0.7))
        band = (cv.y < base_y) & (cv.y >= base_y - height)
        slats = torch.frac(c(cv.uniform(1.0, 2.0)) / base_depth) < 0.55
        rail = (cv.y < base_y - height * 0.8) | ((cv.y - (base_y - height * 0.45)).abs() < height * 0.08)
        cv.paint(along & band & (slats | rail) & c(cv.chance(0.45)), FENCE, cv.colour(BROWNS))


def _draw_trees(cv: _Canvas, geo: dict, count: int, p: float, near: bool) -> None:
    """Street trees at the sidewalk edge: a trunk and a crown sized by depth."""
    for _ in range(count):
        depth = cv.uniform(0.12, 0.4) if near else cv.uniform(0.03, 0.2)
        x, ground = _street_point(geo, depth, _walk_lateral(cv, geo, cv.sign(), 0.5, 1.0))
        active = cv.col(cv.chance(p))
        crown_r = depth * cv.uniform(0.8, 1.5)
        crown_y = ground - depth * cv.uniform(2.2, 3.2)
        trunk = cv.rect(x - cv.thin(depth * 0.06), x + cv.thin(depth * 0.06), crown_y, ground)
        cv.paint(trunk & active, VEGETATION, cv.colour(BROWNS[:2]))
        crown = cv.ellipse(x + depth * cv.uniform(-0.3, 0.3), crown_y, crown_r * cv.uniform(0.8, 1.3), crown_r)
        cv.paint(crown & active, VEGETATION, cv.colour(LEAVES))


def _draw_poles_and_signs(cv: _Canvas, geo: dict) -> None:
    """Thin poles coloured like facades and pavement, most carrying a sign coloured like cars and clothes."""
    c = cv.col
    for _ in range(4):
        depth = cv.uniform(0.04, 0.45)
        x, ground = _street_point(geo, depth, _walk_lateral(cv, geo, cv.sign(), 0.1, 0.7))
        top = (ground - depth * cv.uniform(2.0, 3.5)).clamp(min=0)
        half = cv.thin(depth * 0.025)
        active = c(cv.chance(0.6))
        cv.paint(cv.rect(x - half, x + half, top, ground) & active, POLE, cv.colour(GREYS + [(0.2, 0.25, 0.2)]))
        size = depth * cv.uniform(0.1, 0.18)
        cy = top + size * 1.2
        power = torch.tensor([1.0, 2.0, 8.0])[torch.randint(3, (cv.n,), generator=cv.gen)]  # diamond, disc, plate
        sign = cv.superellipse(x, cy, size * cv.uniform(0.9, 1.4), size, power)
        cv.paint(sign & active & c(cv.chance(0.7)), SIGN, cv.colour(VIVID))
    for _ in range(2):  # shop signs on the facades, coloured like cars and clothes
        x = cv.uniform(0, cv.aspect)
        y = geo["horizon"].view(-1) - cv.uniform(0.02, 0.2)
        w, h = cv.uniform(0.02, 0.08), cv.uniform(0.01, 0.03)
        cv.paint(cv.rect(x - w, x + w, y - h, y + h) & c(cv.chance(0.4)), SIGN, cv.colour(VIVID))


def _draw_cars(cv: _Canvas, geo: dict) -> None:
    """Rear/front views of cars on the road, far to near so the nearer one occludes."""
    c = cv.col
    slots = 5
    depths = torch.sort(cv.uniform(0.03, 0.55, slots), dim=1).values
    active = cv.chance(0.45, slots)
    for k in range(slots):
        depth = depths[:, k]
        x, ground = _street_point(geo, depth, cv.uniform(-0.85, 0.85))
        width = depth * cv.uniform(0.7, 0.95)
        height = width * cv.uniform(0.65, 0.85)
        on = c(active[:, k])
        body = cv.rect(x - width / 2, x + width / 2, ground - 0.55 * height, ground - 0.08 * height)
        cv.paint(body & on, CAR, cv.colour(CAR_PAINT))
        cabin_top = ground - height
        taper = (cv.y - c(cabin_top)) / c(0.45 * height)
        cabin = (cv.y >= c(cabin_top)) & (cv.y < c(ground - 0.55 * height))
        cabin = cabin & ((cv.x - c(x)).abs() < c(width / 2) * (0.7 + 0.26 * taper))
        cv.paint(cabin & on, CAR, cv.colour([(0.15, 0.18, 0.22), (0.25, 0.28, 0.3)]))
        wheels = ((cv.x - c(x)).abs() > c(0.28 * width)) & ((cv.x - c(x)).abs() < c(0.46 * width))
        wheels = wheels & (cv.y >= c(ground - 0.16 * height)) & (cv.y < c(ground))
        cv.paint(wheels & on, CAR, cv.colour(TYRES))


def _draw_pedestrians(cv: _Canvas, geo: dict) -> None:
    """Small upright figures on the sidewalk; clothes share the car and sign palettes."""
    c = cv.col
    for _ in range(4):
        depth = cv.uniform(0.04, 0.5)
        x, ground = _street_point(geo, depth, _walk_lateral(cv, geo, cv.sign(), 0.05, 0.9))
        tall = depth * cv.uniform(0.7, 0.95)
        on = c(cv.chance(0.35))
        stride = tall * cv.uniform(0.0, 0.1)
        leg = cv.thin(tall * 0.045)
        legs = cv.segment(x - 0.04 * tall, ground - 0.48 * tall, x - 0.04 * tall - stride, ground, leg)
        legs |= cv.segment(x + 0.04 * tall, ground - 0.48 * tall, x + 0.04 * tall + stride, ground, leg)
        cv.paint(legs & on, PEDESTRIAN, cv.colour(CLOTHES))
        torso = cv.ellipse(x, ground - 0.62 * tall, tall * 0.12, tall * 0.2)
        cv.paint(torso & on, PEDESTRIAN, cv.colour(CLOTHES))
        head = cv.ellipse(x, ground - 0.89 * tall, tall * 0.065, tall * 0.075)
        cv.paint(head & on, PEDESTRIAN, cv.colour(SKIN))


def _draw_bicyclists(cv: _Canvas, geo: dict) -> None:
    """Side-on bicycles with riders near the road edge: thin rings and bars, the rarest class."""
    c = cv.col
    for _ in range(2):
        depth = cv.uniform(0.05, 0.5)
        side = cv.sign()
        x, ground = _street_point(geo, depth, side * cv.uniform(0.55, 0.9))
        radius = depth * cv.uniform(0.15, 0.19)
        facing = cv.sign()
        rear, front = x - facing * 1.5 * radius, x + facing * 1.5 * radius
        hub = ground - radius
        bar = cv.thin(radius * 0.09)
        seat_x, seat_y = x - facing * 0.5 * radius, hub - 1.4 * radius
        frame = cv.ring(rear, hub, radius, bar) | cv.ring(front, hub, radius, bar)
        frame |= cv.segment(rear, hub, seat_x, seat_y, bar) | cv.segment(seat_x, seat_y, front, hub, bar)
        frame |= cv.segment(front, hub, front - facing * 0.2 * radius, seat_y - 0.2 * radius, bar)
        on = c(cv.chance(0.2))
        cv.paint(frame & on, BICYCLIST, cv.colour(TYRES))
        rider = cv.segment(
            seat_x, seat_y - 0.2 * radius, x + facing * 0.4 * radius, seat_y - 2.0 * radius, radius * 0.32
        )
        rider |= cv.segment(seat_x, seat_y, x + facing * 0.3 * radius, hub - 0.3 * radius, cv.thin(radius * 0.12))
        cv.paint(rider & on, BICYCLIST, cv.colour(CLOTHES))
        head = cv.ellipse(x + facing * 0.55 * radius, seat_y - 2.5 * radius, radius * 0.28, radius * 0.32)
        cv.paint(head & on, BICYCLIST, cv.colour(SKIN))


def _draw_void(cv: _Canvas, geo: dict) -> None:
    """Unlabelled clutter (bins, boxes, stalls) and sometimes the ego-vehicle's bonnet, like CamVid's void."""
    c = cv.col
    for _ in range(4):
        depth = cv.uniform(0.04, 0.5)
        x, ground = _street_point(geo, depth, _walk_lateral(cv, geo, cv.sign(), 0.2, 1.0))
        w, h = depth * cv.uniform(0.1, 0.45), depth * cv.uniform(0.15, 0.5)
        blob = torch.where(
            c(cv.chance(0.5)), cv.rect(x - w, x + w, ground - h, ground), cv.ellipse(x, ground - h / 2, w, h / 2)
        )
        cv.paint(blob & c(cv.chance(0.6)), VOID, cv.colour(ANY, jitter=0.1))
    bonnet_top = 1 - cv.uniform(0.04, 0.1)
    bonnet = cv.y > c(bonnet_top) + 0.15 * ((cv.x - cv.aspect / 2) / cv.aspect) ** 2
    cv.paint(bonnet & c(cv.chance(0.15)), VOID, cv.colour(CAR_PAINT))


def _render(cv: _Canvas, geo: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Look each pixel's layer up (class, colour), then add texture noise, light, blur, and quantise."""
    n, h, w = cv.n, cv.height, cv.width
    flat = (cv.layer.long() + len(cv.classes) * torch.arange(n).view(-1, 1, 1)).view(-1)  # row of the [n * L] table
    labels = torch.take(torch.stack(cv.classes, dim=1), flat.view(n, h, w))
    colour = torch.stack(cv.colours, dim=1).view(-1, 3).index_select(0, flat).view(n, h, w, 3)  # channels last

    # one brightness map [n, H, W] carries texture and light; colour is multiplied by it once
    amplitude = torch.zeros(256)
    amplitude[list(NOISE_AMPLITUDE)] = torch.tensor(list(NOISE_AMPLITUDE.values()))
    grain = torch.rand((n, h, w), generator=cv.gen).sub_(0.5).mul_(amplitude[labels.long()]).mul_(3.4)
    shade = torch.where(labels == SKY, 0.85 + 0.25 * (cv.y / geo["horizon"]).clamp(max=1), 1.0).mul_(grain.add_(1))
    # illumination: smooth light field, a cast shadow across the ground, exposure, white balance
    field = F.interpolate(torch.rand((n, 1, 3, 4), generator=cv.gen), size=(h, w), mode="bilinear", align_corners=False)
    shade.mul_(field[:, 0].mul_(2).sub_(1).mul_(cv.col(cv.uniform(0.1, 0.35))).add_(1))
    shadow_edge = cv.col(cv.uniform(0, cv.aspect)) + (cv.y - geo["horizon"]) * cv.col(cv.uniform(-2, 2))
    shadow = (cv.y > geo["horizon"]) & (cv.x < shadow_edge) & cv.col(cv.chance(0.5))
    shade = torch.where(shadow, cv.col(cv.uniform(0.45, 0.75)), 1.0).mul_(shade).mul_(cv.col(cv.uniform(0.6, 1.3)))
    image = colour.mul_(shade.unsqueeze(-1)).mul_(cv.uniform(0.9, 1.1, 3).view(-1, 1, 1, 3))

    # a touch of lens blur ([1, 2, 1] / 4 both ways, borders kept) so one-pixel structures lose contrast
    blurred = image.clone()
    blurred[:, 1:-1] = (image[:, :-2] + image[:, 2:]).add_(image[:, 1:-1], alpha=2).mul_(0.25)
    image[:, :, 1:-1] = (blurred[:, :, :-2] + blurred[:, :, 2:]).add_(blurred[:, :, 1:-1], alpha=2).mul_(0.25)
    image[:, :, [0, -1]] = blurred[:, :, [0, -1]]
    rgb = image.mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(0, 3, 1, 2).contiguous()
    return rgb, labels


def _generate_chunk(n: int, height: int, width: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Drawing order is occlusion order: street, fences, far trees, poles, clutter, cars, people, near trees."""
    cv = _Canvas(n, height, width, gen)
    geo = _draw_street(cv)
    _draw_fences(cv, geo)
    _draw_trees(cv, geo, count=3, p=0.5, near=False)
    _draw_poles_and_signs(cv, geo)
    _draw_void(cv, geo)
    _draw_cars(cv, geo)
    _draw_pedestrians(cv, geo)
    _draw_bicyclists(cv, geo)
    _draw_trees(cv, geo, count=1, p=0.3, near=True)
    return _render(cv, geo)


def _chunk_generator(seed: int, split: str, chunk: int) -> torch.Generator:
    """Every (seed, split, chunk) has its own stream: splits never share images, chunks can run in parallel."""
    state = np.random.SeedSequence(seed, spawn_key=(SPLIT_STREAMS[split], chunk)).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def generate_synthetic(n: int, height: int = 96, width: int = 128, seed: int = 0, split: str = "train") -> SegDataset:
    """``n`` scenes; the bytes depend only on (seed, split, n, height, width)."""
    if split not in SPLIT_STREAMS:
        raise ValueError(f"split must be one of {list(SPLIT_STREAMS)}, got {split!r}")
    if n < 1 or height < 8 or width < 8:
        raise ValueError(f"need n >= 1 and height, width >= 8, got n={n}, {height}x{width}")
    starts = list(range(0, n, CHUNK))

    def draw(chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
        return _generate_chunk(min(CHUNK, n - starts[chunk]), height, width, _chunk_generator(seed, split, chunk))

    # one chunk per core: torch ops release the GIL, and each chunk's result is independent of scheduling.
    # Generation is hundreds of small ops on ~0.4M-element tensors: intra-op threads gain little there,
    # and when the cores are busy (training in another process) their spin-waits made it ~10x slower.
    with torch_threads(), ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:
        chunks = list(pool.map(draw, range(len(starts))))
    return SegDataset(
        images=torch.cat([im for im, _ in chunks]),
        labels=torch.cat([lb for _, lb in chunks]),
        names=[f"{split}_{i:04d}" for i in range(n)],
        class_names=SYNTHETIC_CLASSES,
        ignore_index=IGNORE_INDEX,
        meta={"source": "synthetic", "split": split, "seed": seed, "scale": 1.0},
    )


def load_synthetic(
    scale: float = 1.0,
    seed: int = 0,
    height: int = 96,
    width: int = 128,
    n_train: int = 200,
    n_val: int = 30,
    n_test: int = 60,
) -> dict[str, SegDataset]:
    """Default splits 200/30/60 at 96x128; ``scale`` resizes after generation like the file sources."""
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    return {
        split: rescale_dataset(generate_synthetic(count, height, width, seed, split), scale)
        for split, count in sizes.items()
    }
