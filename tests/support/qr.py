"""Reading a QR code PNG back to its text, as a phone's camera would: zxing-cpp decodes the pixels.

The PNG is read here (greyscale or palette, 1 to 8 bits, not interlaced: what segno writes), so the decoder needs
neither Pillow nor numpy; zxing-cpp takes the pixels as a 2-D buffer.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _unfilter(raw: bytes, height: int, stride: int, bpp: int) -> list[bytearray]:
    """Undo PNG's per-row filters (RFC 2083, 6): each row starts with its filter type."""
    rows: list[bytearray] = []
    prev = bytearray(stride)
    pos = 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, up_left = prev[i], (prev[i - bpp] if i >= bpp else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 0xFF
            elif kind != 0:
                raise ValueError(f"unknown PNG filter type {kind}")
        rows.append(line)
        prev = line
    return rows


def png_greys(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, one grey byte per pixel) of a greyscale or palette PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, palette = 8, b"", None
    header = None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = body
        elif kind == b"IDAT":
            idat += body
    if header is None:
        raise ValueError("PNG without a header")
    width, height, depth, colour, _compression, _filter, interlace = header
    if colour not in (0, 3) or interlace or depth not in (1, 2, 4, 8):
        raise ValueError(f"unsupported PNG: colour type {colour}, depth {depth}, interlace {interlace}")
    stride = (width * depth + 7) // 8
    rows = _unfilter(zlib.decompress(idat), height, stride, 1)
    greys = bytearray()
    for row in rows:
        for x in range(width):
            bit = x * depth
            value = (row[bit // 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1)
            if colour == 3:
                r, g, b = palette[3 * value:3 * value + 3]
                greys.append((r + g + b) // 3)
            else:
                greys.append(value * 255 // ((1 << depth) - 1))
    return width, height, bytes(greys)


def decode(path: Path | str) -> str:
    """The text of the one QR code in a PNG file; ValueError when none is found."""
    import zxingcpp

    width, height, greys = png_greys(Path(path).read_bytes())
    found = zxingcpp.read_barcodes(memoryview(greys).cast("B", (height, width)), formats=zxingcpp.BarcodeFormat.QRCode)
    if len(found) != 1:
        raise ValueError(f"{path}: {len(found)} QR codes found, expected one")
    return found[0].text
