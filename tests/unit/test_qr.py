"""The test helper that reads a QR code PNG back (tests/support/qr.py), on what the wireguard role draws."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
import segno
from ansible_collections.rampart.mqtt.plugins.module_utils import perimeter

from tests.support import qr

CONFIG = """[Interface]
PrivateKey = yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=
Address = 10.86.12.50/32

[Peer]
PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
PresharedKey = FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE=
AllowedIPs = 10.86.12.0/24
Endpoint = 172.29.87.12:51820
PersistentKeepalive = 25
"""


def test_a_wireguard_config_comes_back_from_the_qr_code_the_role_draws(tmp_path):
    png = tmp_path / "laptop.png"
    png.write_bytes(perimeter.qr_png(CONFIG))
    assert qr.decode(png) == CONFIG


@pytest.mark.parametrize("kind", ["greyscale-8", "palette-1"])
def test_other_png_layouts_decode_too(tmp_path, kind):
    """segno writes 1-bit greyscale; an 8-bit greyscale (every row filtered) or a palette PNG reads the same."""
    out = io.BytesIO()
    if kind == "palette-1":
        segno.make("palette", error="m").save(out, kind="png", scale=4, dark="darkblue", light="yellow")
        text = "palette"
    else:
        matrix = segno.make("greys", error="m").matrix
        scale, border = 4, 4
        size = (len(matrix) + 2 * border) * scale
        rows, prev = [], bytes(size)
        for y in range(size):
            my = y // scale - border
            line = bytes(0 if 0 <= my < len(matrix) and 0 <= x // scale - border < len(matrix)
                         and matrix[my][x // scale - border] else 255 for x in range(size))
            rows.append(bytes([y % 5]) + _filtered(line, prev, y % 5))
            prev = line
        ihdr = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
        out.write(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"".join(rows)))
                  + _chunk(b"IEND", b""))
        text = "greys"
    (tmp_path / "x.png").write_bytes(out.getvalue())
    assert qr.decode(tmp_path / "x.png") == text


def test_a_png_without_a_qr_code_is_an_error(tmp_path):
    blank = tmp_path / "blank.png"
    segno.make("x").save(blank, kind="png", dark="white", light="white")
    with pytest.raises(ValueError, match="0 QR codes found"):
        qr.decode(blank)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _filtered(line: bytes, prev: bytes, kind: int) -> bytes:
    """PNG filter ``kind`` applied to one row of 1-byte pixels (the inverse of what the reader undoes). Written
    out here, not shared with tests/support/qr.py: a predictor bug in a shared copy would cancel out."""
    out = bytearray()
    for i, value in enumerate(line):
        left, up, up_left = (line[i - 1] if i else 0), prev[i], (prev[i - 1] if i else 0)
        if kind == 0:
            pred = 0
        elif kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        else:
            p = left + up - up_left
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else up_left
        out.append((value - pred) & 0xFF)
    return bytes(out)
