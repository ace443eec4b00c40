"""Counts the pixels of given colours in a PNG (8-bit RGB or RGBA, as a browser's screenshot
is), decoded with the standard library: the e2e tests ask whether each run's curve or each kind
of timeline span was really drawn."""
import struct
import sys
import zlib


def decode(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path} is not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in (2, 6) or interlace:
                sys.exit(f"{path}: PNG of depth {depth}, colour type {colour}: not handled")
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, row = line[0], bytearray(line[1:])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                row[i] = (row[i] + left) & 255
            elif kind == 2:
                row[i] = (row[i] + up) & 255
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                row[i] = (row[i] + pred) & 255
        rows.append(bytes(row))
        previous = row
    return width, height, channels, rows


def main():
    width, height, channels, rows = decode(sys.argv[1])
    wanted = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in sys.argv[2:]]
    import numpy as np  # (the venv's; counting in Python would take a while)
    pixels = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(-1, channels)[:, :3]
    pixels = pixels.astype(np.int16)
    counts = [int((np.abs(pixels - np.array(w)).max(axis=1) <= 24).sum()) for w in wanted]
    for colour, count in zip(sys.argv[2:], counts):
        print(colour, count)
    print(f"size {width}x{height}")


if __name__ == "__main__":
    main()
