"""A PNG line chart with nothing but zlib: the equity curve as an image file (for a chat, a ticket, a mail).

No plotting library is a dependency of wispd for one picture; the HTML report has the readable, labelled
charts (SVG). This draws axes, a light grid and one polyline per series, antialiasing-free.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

Color = tuple[int, int, int]
PALETTE: list[Color] = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                        (140, 86, 75), (227, 119, 194), (127, 127, 127)]


class Canvas:
    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        self.w, self.h = width, height
        self.px = bytearray(bytes(background) * (width * height))

    def dot(self, x: int, y: int, color: Color, thick: int = 1) -> None:
        for dx in range(thick):
            for dy in range(thick):
                xx, yy = x + dx, y + dy
                if 0 <= xx < self.w and 0 <= yy < self.h:
                    i = (yy * self.w + xx) * 3
                    self.px[i:i + 3] = bytes(color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, thick: int = 1) -> None:
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, color, thick)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3]) for y in range(self.h))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def line_chart(path: Path, series: list[list[tuple[float, float]]], width: int = 900, height: int = 360) -> None:
    """Write ``series`` (lists of (x, y)) as one chart: shared axes, zero line, grid of 5 x 4."""
    c = Canvas(width, height)
    pad_l, pad_r, pad_t, pad_b = 40, 15, 15, 30
    points = [p for s in series for p in s]
    if points:
        xs, ys = [p[0] for p in points], [p[1] for p in points] + [0.0]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
    else:
        x0, x1, y0, y1 = 0.0, 1.0, 0.0, 1.0
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def sx(x: float) -> int:
        return pad_l + int((x - x0) / (x1 - x0) * (width - pad_l - pad_r))

    def sy(y: float) -> int:
        return height - pad_b - int((y - y0) / (y1 - y0) * (height - pad_t - pad_b))

    grid: Color = (230, 230, 230)
    for i in range(6):
        x = pad_l + i * (width - pad_l - pad_r) // 5
        c.line(x, pad_t, x, height - pad_b, grid)
    for i in range(5):
        y = pad_t + i * (height - pad_t - pad_b) // 4
        c.line(pad_l, y, width - pad_r, y, grid)
    c.line(pad_l, height - pad_b, width - pad_r, height - pad_b, (0, 0, 0))
    c.line(pad_l, pad_t, pad_l, height - pad_b, (0, 0, 0))
    c.line(pad_l, sy(0.0), width - pad_r, sy(0.0), (160, 160, 160))
    for n, s in enumerate(series):
        color = PALETTE[n % len(PALETTE)]
        for (ax, ay), (bx, by) in zip(s, s[1:], strict=False):
            c.line(sx(ax), sy(ay), sx(bx), sy(by), color, 2)
        if len(s) == 1:
            c.dot(sx(s[0][0]), sy(s[0][1]), color, 3)
    path.write_bytes(c.png())
