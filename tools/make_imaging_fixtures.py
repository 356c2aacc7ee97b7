#!/usr/bin/env python3
"""Generates the committed test fixtures of the Imaging module, and the demo sample images.

Run from the repository root (deterministic: fixed seeds, no clock, no network):

    python3 -m venv tools/.venv-cv
    tools/.venv-cv/bin/pip install numpy opencv-python-headless pillow
    tools/.venv-cv/bin/python tools/make_imaging_fixtures.py

Writes
  Tests/ImagingTests/Fixtures/
    fixtures.json            what was generated and with which parameters (read by the tests)
    src-*.png                8-bit RGB test inputs (shapes, gradient, noise, blurred noise)
    gray-*.png               cv2.cvtColor(RGB2GRAY) of each input
    canny-*.png              cv2.Canny(gray, low, high, apertureSize=3, L2gradient=...) as 0/255
    blur-*.png               cv2.GaussianBlur(src_u8, (0, 0), sigma) (8-bit)
    blurf-*.tif              cv2.GaussianBlur(src / 255 as float32, (k, k), sigma) with k as
                             OpenCV picks for 8-bit (round(6 sigma + 1) | 1), float32 TIFF
    resize-*.png             PIL.Image.resize(src, size, filter) on 8-bit RGB
    png-*.png                PNGs of every colour type / bit depth, pixel values given by the
                             formulas in fixtures.json so the tests can recompute them
    tiff-*.tif               TIFFs written by other writers (OpenCV, Pillow, and hand-built
                             planar-separate and tiled files)
  Assets/images/sample.png       256x192 procedural scene (sky, sun, hills, house)
  Assets/images/sample-mask.png  a soft blob mask of the same size

Python is used only here, never by the Swift tests.
"""

import json
import os
import struct
import zlib

import cv2
import numpy as np
from PIL import Image, PngImagePlugin

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "ImagingTests", "Fixtures")
ASSETS = os.path.join(ROOT, "Assets", "images")


def save_png(name, arr, folder=FIX):
    """Saves uint8/uint16 arrays (H,W) or (H,W,C) in RGB order with Pillow or OpenCV."""
    path = os.path.join(folder, name)
    if arr.dtype == np.uint16:
        # Pillow does not write 16-bit PNGs from arrays; OpenCV does (it expects BGR order).
        if arr.ndim == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR if arr.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
        cv2.imwrite(path, arr)
    else:
        Image.fromarray(arr).save(path, optimize=True)
    return name


# ---------------------------------------------------------------- test images

def make_shapes(w, h, rng):
    img = np.zeros((h, w, 3), np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img[..., 0] = 40 + 120 * xx / w
    img[..., 1] = 60 + 80 * yy / h
    img[..., 2] = 150
    img = img.astype(np.uint8)
    cv2.rectangle(img, (int(w * 0.1), int(h * 0.15)), (int(w * 0.45), int(h * 0.55)), (230, 200, 40), -1)
    cv2.circle(img, (int(w * 0.68), int(h * 0.4)), int(min(w, h) * 0.2), (20, 30, 200), -1)
    pts = np.array([[int(w * 0.2), int(h * 0.9)], [int(w * 0.5), int(h * 0.6)], [int(w * 0.8), int(h * 0.92)]], np.int32)
    cv2.fillPoly(img, [pts], (250, 250, 250))
    cv2.line(img, (0, h - 1), (w - 1, int(h * 0.1)), (10, 120, 10), 2)
    noise = rng.normal(0, 6, img.shape)
    return np.clip(img.astype(np.float32) + noise, 0, 255).round().astype(np.uint8)


def make_gradient(w, h):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255 * xx / (w - 1)
    g = 255 * yy / (h - 1)
    b = 127.5 + 127.5 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    return np.stack([r, g, b], -1).round().astype(np.uint8)


def make_noise(w, h, rng):
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def make_blurred_noise(w, h, rng):
    # Smooth random texture: many weak edges that only hysteresis connects.
    n = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 1.5).astype(np.float32)
    return np.clip((n - n.mean()) * 5 + 128, 0, 255).round().astype(np.uint8)


# ---------------------------------------------------------------- hand-built TIFFs

def tiff_ifd(entries, next_ifd=0):
    """Little-endian IFD bytes; entries: list of (tag, type, count, value_or_offset)."""
    out = struct.pack("<H", len(entries))
    for tag, typ, count, value in sorted(entries):
        if typ == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, typ, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, typ, count, value)
    return out + struct.pack("<I", next_ifd)


def planar_separate_tiff(rgb16):
    """An uncompressed 16-bit RGB TIFF with PlanarConfiguration=2 (one strip per plane)."""
    h, w, _ = rgb16.shape
    planes = [rgb16[..., c].astype("<u2").tobytes() for c in range(3)]
    header = 8
    data_off = header
    offsets = []
    blob = b""
    for p in planes:
        offsets.append(data_off + len(blob))
        blob += p
    extra_off = data_off + len(blob)
    bps = struct.pack("<HHH", 16, 16, 16)
    strip_offsets = struct.pack("<III", *offsets)
    strip_counts = struct.pack("<III", *[len(p) for p in planes])
    extras = bps + strip_offsets + strip_counts
    ifd_off = extra_off + len(extras)
    entries = [
        (256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, extra_off), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 3, extra_off + 6), (277, 3, 1, 3), (278, 3, 1, h), (279, 4, 3, extra_off + 18), (284, 3, 1, 2),
    ]
    return b"II*\x00" + struct.pack("<I", ifd_off) + blob + extras + tiff_ifd(entries)


def tiled_tiff(gray8, tile=16):
    """A Deflate-compressed 8-bit gray TIFF in 16x16 tiles (edge tiles are partial)."""
    h, w = gray8.shape
    tx, ty = (w + tile - 1) // tile, (h + tile - 1) // tile
    tiles = []
    for j in range(ty):
        for i in range(tx):
            t = np.zeros((tile, tile), np.uint8)
            part = gray8[j * tile:(j + 1) * tile, i * tile:(i + 1) * tile]
            t[:part.shape[0], :part.shape[1]] = part
            tiles.append(zlib.compress(t.tobytes()))
    blob = b""
    offsets = []
    for t in tiles:
        offsets.append(8 + len(blob))
        blob += t
    extra_off = 8 + len(blob)
    n = len(tiles)
    extras = struct.pack("<%dI" % n, *offsets) + struct.pack("<%dI" % n, *[len(t) for t in tiles])
    ifd_off = extra_off + len(extras)
    entries = [
        (256, 3, 1, w), (257, 3, 1, h), (258, 3, 1, 8), (259, 3, 1, 8), (262, 3, 1, 1), (277, 3, 1, 1),
        (322, 3, 1, tile), (323, 3, 1, tile), (324, 4, n, extra_off), (325, 4, n, extra_off + 4 * n),
    ]
    return b"II*\x00" + struct.pack("<I", ifd_off) + blob + extras + tiff_ifd(entries)


# ---------------------------------------------------------------- demo sample

def make_sample():
    w, h = 256, 192
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    t = yy / h
    img[..., 0] = 90 + 100 * t
    img[..., 1] = 150 + 70 * t
    img[..., 2] = 235 - 20 * t
    # sun with a soft glow
    d = np.sqrt((xx - 200) ** 2 + (yy - 40) ** 2)
    glow = np.clip(1 - d / 60, 0, 1) ** 2
    img += glow[..., None] * np.array([60, 40, 0], np.float32)
    img[d < 18] = (255, 230, 120)
    # two hills
    hill1 = 130 + 18 * np.sin(xx / 30.0) - 10 * np.cos(xx / 13.0)
    hill2 = 150 + 12 * np.sin(xx / 20.0 + 1.0)
    img[yy > hill1] = (70, 140, 60)
    img[yy > hill2] = (50, 115, 45)
    img = np.clip(img, 0, 255).astype(np.uint8)
    # a little grass texture
    rng = np.random.default_rng(7)
    grass = (yy > hill2) & (rng.random((h, w)) < 0.08)
    img[grass] = (40, 95, 35)
    # house: walls, roof, door, window
    cv2.rectangle(img, (60, 115), (130, 165), (200, 170, 130), -1)
    cv2.fillPoly(img, [np.array([[52, 117], [95, 80], [138, 117]], np.int32)], (150, 50, 40))
    cv2.rectangle(img, (85, 135), (102, 165), (90, 60, 40), -1)
    cv2.rectangle(img, (110, 125), (124, 139), (170, 210, 240), -1)
    cv2.line(img, (117, 125), (117, 139), (90, 60, 40), 1)
    cv2.line(img, (110, 132), (124, 132), (90, 60, 40), 1)
    # a tree
    cv2.rectangle(img, (176, 130), (183, 168), (100, 70, 40), -1)
    cv2.circle(img, (180, 120), 20, (40, 100, 40), -1)
    # blob mask over the tree and some sky
    dm = np.sqrt(((xx - 185) / 40) ** 2 + ((yy - 100) / 50) ** 2)
    mask = cv2.GaussianBlur(np.where(dm < 1, 255, 0).astype(np.uint8), (0, 0), 3)
    return img, mask


def main():
    os.makedirs(FIX, exist_ok=True)
    os.makedirs(ASSETS, exist_ok=True)
    for f in os.listdir(FIX):
        if f.endswith((".png", ".tif", ".json")):
            os.remove(os.path.join(FIX, f))
    rng = np.random.default_rng(1234)
    meta = {"generator": "tools/make_imaging_fixtures.py", "opencv": cv2.__version__,
            "pillow": Image.__version__ if hasattr(Image, "__version__") else "", "numpy": np.__version__}
    import PIL
    meta["pillow"] = PIL.__version__

    sources = {
        "shapes": make_shapes(96, 80, rng),
        "gradient": make_gradient(64, 48),
        "noise": make_noise(40, 32, rng),
        "smooth": make_blurred_noise(72, 64, rng),
    }
    meta["sources"] = {}
    for name, img in sources.items():
        save_png(f"src-{name}.png", img)
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        save_png(f"gray-{name}.png", gray)
        meta["sources"][name] = {"image": f"src-{name}.png", "gray": f"gray-{name}.png",
                                 "width": img.shape[1], "height": img.shape[0]}

    # Canny: exact parity expected.
    canny = []
    for name in ["shapes", "gradient", "noise", "smooth"]:
        gray = cv2.cvtColor(sources[name], cv2.COLOR_RGB2GRAY)
        for low, high in [(50, 150), (100, 200), (20, 60), (200, 100), (5, 30)]:
            for l2 in (False, True):
                edges = cv2.Canny(gray, low, high, apertureSize=3, L2gradient=l2)
                out = f"canny-{name}-{low}-{high}-{'l2' if l2 else 'l1'}.png"
                save_png(out, edges)
                canny.append({"source": name, "low": low, "high": high, "l2": l2, "edges": out,
                              "edgePixels": int((edges > 0).sum())})
    meta["canny"] = canny

    # Gaussian blur.
    blur = []
    for name in ["shapes", "noise"]:
        src = sources[name]
        for sigma in (0.8, 1.5, 3.0):
            out8 = f"blur-{name}-{sigma}.png"
            save_png(out8, cv2.GaussianBlur(src, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101))
            k = int(round(sigma * 6 + 1)) | 1
            f = cv2.GaussianBlur(src.astype(np.float32) / 255, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
            outf = f"blurf-{name}-{sigma}.tif"
            cv2.imwrite(os.path.join(FIX, outf), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
            blur.append({"source": name, "sigma": sigma, "ksize": k, "u8": out8, "float": outf})
    meta["blur"] = blur

    # Pillow resize on 8-bit RGB.
    resize = []
    filters = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC,
               "lanczos": Image.LANCZOS}
    for name in ["shapes", "noise"]:
        pil = Image.fromarray(sources[name])
        w, h = pil.size
        sizes = [(w // 2 - 3, h // 2 + 1), (int(w * 1.7), int(h * 1.3)), (w // 3, int(h * 1.5))]
        for fname, f in filters.items():
            for sw, sh in sizes:
                out = f"resize-{name}-{fname}-{sw}x{sh}.png"
                pil.resize((sw, sh), f).save(os.path.join(FIX, out), optimize=True)
                resize.append({"source": name, "filter": fname, "width": sw, "height": sh, "output": out})
    meta["resize"] = resize

    # PNG colour types and bit depths. Pixel formulas (x, y, channel c):
    #   8-bit:  (x * 7 + y * 13 + c * 50) % 256
    #   16-bit: (x * 1031 + y * 2053 + c * 4099) % 65536
    W, H = 19, 11
    yy, xx = np.mgrid[0:H, 0:W]
    def f8(c):
        return ((xx * 7 + yy * 13 + c * 50) % 256).astype(np.uint8)
    def f16(c):
        return ((xx * 1031 + yy * 2053 + c * 4099) % 65536).astype(np.uint16)
    png = []
    save_png("png-gray8.png", f8(0)); png.append({"file": "png-gray8.png", "channels": 1, "bits": 8, "colorType": 0})
    save_png("png-gray16.png", f16(0)); png.append({"file": "png-gray16.png", "channels": 1, "bits": 16, "colorType": 0})
    Image.fromarray(np.stack([f8(0), f8(1)], -1)).save(os.path.join(FIX, "png-graya8.png"))
    png.append({"file": "png-graya8.png", "channels": 2, "bits": 8, "colorType": 4})
    save_png("png-rgb8.png", np.stack([f8(c) for c in range(3)], -1))
    png.append({"file": "png-rgb8.png", "channels": 3, "bits": 8, "colorType": 2})
    save_png("png-rgba8.png", np.stack([f8(c) for c in range(4)], -1))
    png.append({"file": "png-rgba8.png", "channels": 4, "bits": 8, "colorType": 6})
    save_png("png-rgb16.png", np.stack([f16(c) for c in range(3)], -1))
    png.append({"file": "png-rgb16.png", "channels": 3, "bits": 16, "colorType": 2})
    save_png("png-rgba16.png", np.stack([f16(c) for c in range(4)], -1))
    png.append({"file": "png-rgba16.png", "channels": 4, "bits": 16, "colorType": 6})
    meta["png"] = png
    # Palette with transparency: index (x + y) % 4 into the palette below; index 0 is transparent.
    palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]]
    pimg = Image.frombytes("P", (W, H), ((xx + yy) % 4).astype(np.uint8).tobytes())
    pimg.putpalette(sum(palette, []))
    pimg.info["transparency"] = 0
    pimg.save(os.path.join(FIX, "png-palette-trns.png"), transparency=0)
    meta["palette"] = {"file": "png-palette-trns.png", "palette": palette, "transparentIndex": 0}
    # 1-bit gray: (x ^ y) & 1.
    Image.fromarray(((xx ^ yy) & 1).astype(bool)).save(os.path.join(FIX, "png-gray1.png"))
    meta["gray1"] = {"file": "png-gray1.png", "formula": "(x ^ y) & 1"}
    # Text chunks of the three kinds.
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "caf\u00e9 latin-1")                                  # tEXt (Latin-1)
    info.add_text("Comment", "compressed " * 40, zip=True)                     # zTXt
    info.add_itxt("Description", "\u65e5\u672c\u8a9e \U0001F600 utf-8", lang="ja", tkey="desc")  # iTXt
    Image.fromarray(f8(0)).save(os.path.join(FIX, "png-text.png"), pnginfo=info)
    meta["text"] = {"file": "png-text.png", "chunks": [["Title", "caf\u00e9 latin-1"], ["Comment", "compressed " * 40],
                                                       ["Description", "\u65e5\u672c\u8a9e \U0001F600 utf-8"]]}

    # TIFFs from other writers. Formulas as for PNG (8-bit f8, 16-bit f16).
    tiffs = []
    rgb16 = np.stack([f16(c) for c in range(3)], -1)
    cv2.imwrite(os.path.join(FIX, "tiff-cv2-rgb16.tif"), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    tiffs.append({"file": "tiff-cv2-rgb16.tif", "channels": 3, "bits": 16})
    Image.fromarray(np.stack([f8(c) for c in range(3)], -1)).save(os.path.join(FIX, "tiff-pil-rgb8.tif"),
                                                                  compression="tiff_deflate")
    tiffs.append({"file": "tiff-pil-rgb8.tif", "channels": 3, "bits": 8})
    Image.fromarray(f8(0)).save(os.path.join(FIX, "tiff-pil-gray8.tif"), compression="tiff_lzw")
    tiffs.append({"file": "tiff-pil-gray8.tif", "channels": 1, "bits": 8})
    Image.fromarray(np.stack([f8(c) for c in range(4)], -1)).save(os.path.join(FIX, "tiff-pil-rgba8.tif"))
    tiffs.append({"file": "tiff-pil-rgba8.tif", "channels": 4, "bits": 8})
    with open(os.path.join(FIX, "tiff-planar-rgb16.tif"), "wb") as fh:
        fh.write(planar_separate_tiff(rgb16))
    tiffs.append({"file": "tiff-planar-rgb16.tif", "channels": 3, "bits": 16})
    big = np.mgrid[0:37, 0:45]
    tile_src = ((big[1] * 7 + big[0] * 13) % 256).astype(np.uint8)
    with open(os.path.join(FIX, "tiff-tiled-gray8.tif"), "wb") as fh:
        fh.write(tiled_tiff(tile_src))
    tiffs.append({"file": "tiff-tiled-gray8.tif", "channels": 1, "bits": 8, "width": 45, "height": 37})
    pimg.convert("RGB").quantize(4).save(os.path.join(FIX, "tiff-pil-palette.tif"))
    meta["tiffPalette"] = {"file": "tiff-pil-palette.tif", "rgb": "png-palette-trns.png colours, no transparency"}
    meta["tiff"] = tiffs

    with open(os.path.join(FIX, "fixtures.json"), "w") as fh:
        json.dump(meta, fh, indent=1, ensure_ascii=False)

    sample, mask = make_sample()
    Image.fromarray(sample).save(os.path.join(ASSETS, "sample.png"), optimize=True)
    Image.fromarray(mask).save(os.path.join(ASSETS, "sample-mask.png"), optimize=True)

    total = sum(os.path.getsize(os.path.join(FIX, f)) for f in os.listdir(FIX))
    print(f"fixtures: {len(os.listdir(FIX))} files, {total} bytes")
    for f in ("sample.png", "sample-mask.png"):
        print(f, os.path.getsize(os.path.join(ASSETS, f)), "bytes")


if __name__ == "__main__":
    main()
