"""rgb_array rendering: what a person watching an episode wants to see.

Top row: up to four images of the current candidate pools; labeled regions are tinted green,
candidate regions outlined in yellow, and the regions chosen at the last step outlined in red.
Bottom row: a state-set image, the network's prediction, the ground truth and the entropy map.
"""

from __future__ import annotations

import numpy as np
import torch

from .regions import RegionGrid
from .scores import entropy_map

# CamVid-like colours for the first classes, then evenly spaced hues
_BASE_PALETTE = [
    (128, 128, 128),
    (128, 0, 0),
    (192, 192, 128),
    (128, 64, 128),
    (60, 40, 222),
    (128, 128, 0),
    (192, 128, 128),
    (64, 64, 128),
    (64, 0, 128),
    (64, 64, 0),
    (0, 128, 192),
    (220, 20, 60),
]


def palette(num_classes: int) -> torch.Tensor:
    """uint8 [num_classes + 1, 3]; the last row (black) is for ignored pixels."""
    colours: list[tuple[int, ...]] = list(_BASE_PALETTE[:num_classes])
    for i in range(len(colours), num_classes):
        hue = (i * 0.618) % 1.0
        colours.append(tuple(int(255 * v) for v in _hsv_to_rgb(hue, 0.8, 0.9)))
    return torch.tensor(colours + [(0, 0, 0)], dtype=torch.uint8)


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def colourize(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[H, W] class ids (anything >= num_classes is ignore) -> uint8 [3, H, W]."""
    ids = labels.long().clamp(max=num_classes).cpu()
    return palette(num_classes)[ids].permute(2, 0, 1)


def region_outline(grid: RegionGrid, flags: torch.Tensor, width: int = 1) -> torch.Tensor:
    """Bool [H, W]: the border pixels of the regions whose flag is set."""
    rh, rw = grid.region_size
    edge = torch.zeros(rh, rw, dtype=torch.bool)
    edge[:width], edge[-width:], edge[:, :width], edge[:, -width:] = True, True, True, True
    return grid.expand(flags.cpu()) & edge.repeat(grid.rows, grid.cols)


def _paint(image: torch.Tensor, mask: torch.Tensor, colour: tuple[int, int, int], alpha: float = 1.0) -> torch.Tensor:
    colour_t = torch.tensor(colour, dtype=torch.float32).view(3, 1, 1)
    blended = image.float() * (1 - alpha) + colour_t * alpha
    return torch.where(mask, blended, image.float()).round().to(torch.uint8)


def render_state(
    grid: RegionGrid,
    num_classes: int,
    pool_images: torch.Tensor,
    pools: torch.Tensor,
    labeled: torch.Tensor,
    last_chosen: torch.Tensor,
    state_image: torch.Tensor,
    state_probs: torch.Tensor,
    state_label: torch.Tensor,
) -> np.ndarray:
    """uint8 [2H, 4W, 3]: pool images with labeled / candidate / chosen regions, then a state image, its
    prediction, its ground truth and its entropy map.

    ``pools`` [K, N] and ``last_chosen`` are global region ids, ``labeled`` is bool [num_images, R],
    ``state_image`` is uint8 [1, 3, H, W] with ``state_probs`` its softmax map [1, C, H, W].
    """
    per_image = grid.per_image
    pools = pools.reshape(-1)
    pools = pools[pools >= 0].cpu()
    candidates = torch.zeros(labeled.shape[0] * per_image, dtype=torch.bool)
    candidates[pools] = True
    chosen = torch.zeros_like(candidates)
    chosen[last_chosen] = True
    labeled = labeled.reshape(-1).cpu()
    shown = torch.unique(torch.cat([last_chosen, pools]) // per_image)[:4].tolist()
    width = max(1, min(grid.region_size) // 16)
    tiles = []
    for index in shown:
        span = slice(index * per_image, (index + 1) * per_image)
        image = pool_images[index].cpu()
        image = _paint(image, grid.expand(labeled[span]), (0, 200, 0), alpha=0.35)
        image = _paint(image, region_outline(grid, candidates[span], width), (255, 220, 0))
        image = _paint(image, region_outline(grid, chosen[span], 2 * width), (255, 0, 0))
        tiles.append(image)
    entropy = (entropy_map(state_probs)[0].cpu() * 255).round().to(torch.uint8).expand(3, -1, -1)
    bottom = [
        state_image[0].cpu(),
        colourize(state_probs[0].argmax(0), num_classes),
        colourize(state_label, num_classes),
        entropy,
    ]
    blank = torch.zeros_like(bottom[0])
    top = tiles + [blank] * (4 - len(tiles))
    canvas = torch.cat([torch.cat(top, dim=2), torch.cat(bottom, dim=2)], dim=1)
    return canvas.permute(1, 2, 0).contiguous().numpy()
