#!/usr/bin/env python3
"""Packs the rendered PNG icons into a Windows .ico and a macOS .icns (standard library only).

usage: pack-icons.py OUT.ico OUT.icns SIZE=FILE.png...

The .ico holds 16..48 px as 32-bit BMP images (what every Windows tool, NSIS included, reads) and
256 px as PNG (how Windows stores large icons since Vista). The .icns holds PNG images under the
type codes macOS has read since 10.7.
"""
import struct
import sys
import zlib


def read_png_rgba(path):
    """Decodes an 8-bit RGBA, non-interlaced PNG (what rsvg-convert writes) to rows of bytes."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, colour, interlace) != (8, 6, 0):
                raise SystemExit(f"{path}: need 8-bit RGBA non-interlaced, got {depth}/{colour}")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride, rows, prev = width * 4, [], bytearray(width * 4)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - 4] if i >= 4 else 0
            b = prev[i]
            c = prev[i - 4] if i >= 4 else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def bmp_entry(path):
    """A 32-bit BGRA DIB as .ico stores it: bottom-up rows, doubled height, an AND mask."""
    w, h, rows = read_png_rgba(path)
    header = struct.pack("<IiiHHIIiiII", 40, w, 2 * h, 1, 32, 0, 0, 0, 0, 0, 0)
    pixels = b"".join(
        bytes(px for i in range(0, len(r), 4) for px in (r[i + 2], r[i + 1], r[i], r[i + 3]))
        for r in reversed(rows))
    mask_stride = ((w + 31) // 32) * 4
    return w, h, header + pixels + b"\0" * (mask_stride * h)


def write_ico(out, pngs):
    entries = []
    for size in sorted(pngs):
        if size <= 48:
            entries.append(bmp_entry(pngs[size]))
        elif size == 256:
            entries.append((256, 256, open(pngs[size], "rb").read()))
    offset = 6 + 16 * len(entries)
    head, body = struct.pack("<HHH", 0, 1, len(entries)), b""
    for w, h, blob in entries:
        head += struct.pack("<BBBBHHII", w % 256, h % 256, 0, 0, 1, 32, len(blob), offset)
        offset += len(blob)
        body += blob
    open(out, "wb").write(head + body)


# icns type codes for PNG images, by pixel size (the @2x codes reuse the doubled sizes).
ICNS_TYPES = {16: [b"icp4"], 32: [b"icp5", b"ic11"], 64: [b"ic12"], 128: [b"ic07"],
              256: [b"ic08", b"ic13"], 512: [b"ic09", b"ic14"], 1024: [b"ic10"]}


def write_icns(out, pngs):
    body = b""
    for size, codes in ICNS_TYPES.items():
        if size in pngs:
            png = open(pngs[size], "rb").read()
            for code in codes:
                body += code + struct.pack(">I", 8 + len(png)) + png
    open(out, "wb").write(b"icns" + struct.pack(">I", 8 + len(body)) + body)


def main():
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    pngs = {}
    for arg in sys.argv[3:]:
        size, path = arg.split("=", 1)
        pngs[int(size)] = path
    write_ico(sys.argv[1], pngs)
    write_icns(sys.argv[2], pngs)


if __name__ == "__main__":
    main()
