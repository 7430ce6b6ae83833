"""Label Studio's brush run-length format (RLE), as its brush results hold it in the JSON export.

A brush result is ``{"type": "brushlabels", "value": {"format": "rle", "rle": [bytes], "brushlabels": [class]},
"original_width", "original_height"}``. The RLE packs the flattened RGBA canvas (H x W x 4 bytes; the alpha byte is
the mask) as a bit stream, most significant bit first: 32 bits value count, 5 bits word size - 1, four 4-bit
run-length sizes - 1; then chunks of a 1-bit flag, a 2-bit size index and (run - 1) in that many bits, followed by
one word repeated ``run`` times (flag 1) or ``run`` literal words (flag 0).

The decoder is segal's own (about 30 lines), tested against masks Label Studio 1.23.2 exported itself and RLE that
label-studio-sdk's encoder wrote (tests/data/label_studio/): the one maintained implementation, in
label-studio-sdk, brings Label Studio's API client and its dependencies for a function this small.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

MASK_THRESHOLD = 128  # alpha (JSON) or grey value (PNG export) from which a brush pixel counts as painted


def decode_rle(rle: Sequence[int]) -> np.ndarray:
    """Label Studio's brush RLE -> the flat uint8 array it encodes (H * W * 4 RGBA values)."""
    bits = np.unpackbits(np.asarray(rle, dtype=np.uint8))
    position = 0

    def read(count: int) -> int:
        nonlocal position
        if position + count > bits.size:
            raise ValueError("truncated brush RLE")
        value = 0
        for bit in bits[position : position + count]:
            value = (value << 1) | int(bit)
        position += count
        return value

    total = read(32)
    word = read(5) + 1
    sizes = [read(4) + 1 for _ in range(4)]
    out = np.zeros(total, dtype=np.uint8)
    i = 0
    while i < total:
        repeat = read(1)
        end = min(total, i + 1 + read(sizes[read(2)]))
        if repeat:
            out[i:end] = read(word)
        else:
            for k in range(i, end):
                out[k] = read(word)
        i = end
    return out


def encode_rle(values: np.ndarray, sizes: Sequence[int] = (3, 6, 10, 16)) -> list[int]:
    """Flat uint8 values -> brush RLE (repeat chunks only, 8-bit words): what Label Studio's editor reads back."""
    values = np.asarray(values, dtype=np.uint8).reshape(-1)
    bits: list[str] = [format(values.size, "032b"), format(7, "05b"), *(format(s - 1, "04b") for s in sizes)]
    change = np.flatnonzero(np.diff(values.astype(np.int16))) + 1
    starts, ends = np.concatenate([[0], change]), np.concatenate([change, [values.size]])
    for start, end in zip(starts.tolist(), ends.tolist()):
        while start < end:
            run = min(end - start, 1 << sizes[-1])
            index = next(k for k, s in enumerate(sizes) if run - 1 < (1 << s))
            bits.append(
                "1" + format(index, "02b") + format(run - 1, f"0{sizes[index]}b") + format(int(values[start]), "08b")
            )
            start += run
    stream = "".join(bits)
    stream += "0" * (-len(stream) % 8)
    return [int(stream[k : k + 8], 2) for k in range(0, len(stream), 8)]


def mask_to_rle(mask: np.ndarray) -> list[int]:
    """A bool [H, W] mask as the RLE of a brush stroke (white, opaque where painted)."""
    rgba = np.repeat((np.asarray(mask, dtype=bool).astype(np.uint8) * 255)[..., None], 4, axis=-1)
    return encode_rle(rgba)


def rle_to_mask(rle: Sequence[int], height: int, width: int) -> np.ndarray:
    """A brush result's RLE -> bool [H, W] (the alpha channel, painted from MASK_THRESHOLD)."""
    flat = decode_rle(rle)
    if flat.size != height * width * 4:
        raise ValueError(f"brush RLE holds {flat.size} values, a {width}x{height} RGBA mask needs {height * width * 4}")
    return flat.reshape(height, width, 4)[..., 3] >= MASK_THRESHOLD
