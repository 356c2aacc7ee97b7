#!/usr/bin/env python3
"""The miniature LLMGA world: procedurally generated scenes of one or two simple shapes on a plain
background, with short, medium and detailed captions, inpaint/outpaint masks and edit triples.

Deterministic: scene i of seed s is drawn from numpy.random.default_rng([s, i]); rendering uses only
Pillow drawing at 4x supersampling followed by a box-filter downscale. The caption grammar is documented
in tools/mini/README.md. Run from the repository root:

    tools/.venv/bin/python tools/mini/world.py --preview out/mini-world.png     # a contact sheet + captions
    tools/.venv/bin/python tools/mini/world.py --print 10                       # captions and edits as text

Library use (the training scripts import this file):

    from world import sample_scene, render, short_caption, medium_caption, detailed_caption, ...
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

# A fixed palette of 8 named colours (sRGB).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 50),
    "green": (40, 170, 70),
    "blue": (40, 80, 220),
    "purple": (140, 60, 190),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
COLOURS = list(PALETTE)
SHAPES = ["circle", "square", "triangle", "star"]
SIZES = {"small": 0.13, "large": 0.23}          # half-extent as a fraction of the image side
POSITIONS = {                                    # shape centre as fractions (x, y)
    "centre": (0.5, 0.5), "left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75),
}
# How each position is said in a detailed caption ("... in the centre of a plain blue background").
POSITION_PHRASE = {"centre": "in the centre", "left": "on the left", "right": "on the right",
                   "top": "at the top", "bottom": "at the bottom"}
PAIRS = [("left", "right"), ("top", "bottom")]   # where two shapes go
SUPERSAMPLE = 4


@dataclass(frozen=True)
class Shape:
    kind: str       # one of SHAPES
    colour: str     # one of COLOURS
    size: str       # "small" | "large"
    position: str   # one of POSITIONS


@dataclass(frozen=True)
class Scene:
    shapes: tuple[Shape, ...]   # one or two
    background: str             # one of COLOURS, different from every shape's colour


# ---------------------------------------------------------------------------------------------- sampling

def sample_scene(rng: np.random.Generator, two_shape_prob: float = 0.3) -> Scene:
    background = COLOURS[rng.integers(len(COLOURS))]
    others = [c for c in COLOURS if c != background]
    if rng.random() < two_shape_prob:
        positions = PAIRS[rng.integers(len(PAIRS))]
        shapes = []
        for pos in positions:
            shapes.append(Shape(SHAPES[rng.integers(len(SHAPES))], others[rng.integers(len(others))],
                                "small" if rng.random() < 0.5 else "large", pos))
        # Two shapes are never identical in kind and colour, so each can be named unambiguously.
        if (shapes[0].kind, shapes[0].colour) == (shapes[1].kind, shapes[1].colour):
            alt = [c for c in others if c != shapes[0].colour]
            shapes[1] = replace(shapes[1], colour=alt[rng.integers(len(alt))])
        return Scene(tuple(shapes), background)
    names = list(POSITIONS)
    return Scene((Shape(SHAPES[rng.integers(len(SHAPES))], others[rng.integers(len(others))],
                        "small" if rng.random() < 0.5 else "large", names[rng.integers(len(names))]),), background)


def scene_at(seed: int, index: int, **kw) -> Scene:
    """Scene `index` of the stream `seed` (independent of how many others were drawn)."""
    return sample_scene(np.random.default_rng([seed, index]), **kw)


# ---------------------------------------------------------------------------------------------- rendering

def _polygon(shape: Shape, cx: float, cy: float, r: float) -> list[tuple[float, float]] | None:
    if shape.kind == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape.kind == "triangle":   # upright, equilateral-ish, filling the same box height
        return [(cx, cy - r), (cx + r * 1.1, cy + r * 0.9), (cx - r * 1.1, cy + r * 0.9)]
    if shape.kind == "star":       # five points, inner radius 0.45 r
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r * 1.15 if k % 2 == 0 else r * 0.5
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a) + r * 0.08))
        return pts
    return None


def _draw_shape(draw: ImageDraw.ImageDraw, shape: Shape, side: int, fill) -> None:
    fx, fy = POSITIONS[shape.position]
    cx, cy, r = fx * side, fy * side, SIZES[shape.size] * side
    poly = _polygon(shape, cx, cy, r)
    if poly is None:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(poly, fill=fill)


def render(scene: Scene, size: int = 64) -> Image.Image:
    """The scene as an RGB image of size x size, anti-aliased by 4x supersampling."""
    big = size * SUPERSAMPLE
    im = Image.new("RGB", (big, big), PALETTE[scene.background])
    d = ImageDraw.Draw(im)
    for s in scene.shapes:
        _draw_shape(d, s, big, PALETTE[s.colour])
    return im.resize((size, size), Image.Resampling.BOX)


def shape_mask(shape: Shape, size: int = 64) -> Image.Image:
    """Mode-L mask of one shape's pixels (255 inside, anti-aliased edge)."""
    big = size * SUPERSAMPLE
    im = Image.new("L", (big, big), 0)
    _draw_shape(ImageDraw.Draw(im), shape, big, 255)
    return im.resize((size, size), Image.Resampling.BOX)


# ---------------------------------------------------------------------------------------------- captions

def article(word: str) -> str:
    """'a' or 'an' for the word that follows ('an orange circle', 'a large circle')."""
    return "an" if word[0] in "aeiou" else "a"


def _short_one(s: Shape) -> str:
    return f"{article(s.colour)} {s.colour} {s.kind}"


def short_caption(scene: Scene) -> str:
    """'a red circle' / 'a red circle and a green star'."""
    return " and ".join(_short_one(s) for s in scene.shapes)


def medium_caption(scene: Scene) -> str:
    """'a red circle on a blue background' (a centred shape: the centre is the default and goes unsaid) /
    'a red circle on the left, on a blue background' / 'a red square at the top and a green star at the
    bottom, on a white background'."""
    bg = f"on {article(scene.background)} {scene.background} background"
    if len(scene.shapes) == 1 and scene.shapes[0].position == "centre":
        return f"{short_caption(scene)} {bg}"
    parts = [f"{_short_one(s)} {POSITION_PHRASE[s.position]}" for s in scene.shapes]
    return f"{' and '.join(parts)}, {bg}"


def detailed_caption(scene: Scene) -> str:
    """'a large red circle on the left of a plain blue background' /
    'a small red circle on the left and a large green star on the right, on a plain blue background'."""
    parts = [f"a {s.size} {s.colour} {s.kind} {POSITION_PHRASE[s.position]}" for s in scene.shapes]
    if len(parts) == 1:
        return f"{parts[0]} of a plain {scene.background} background"
    return f"{parts[0]} and {parts[1]}, on a plain {scene.background} background"


def caption(scene: Scene, kind: str) -> str:
    return {"short": short_caption, "medium": medium_caption, "detailed": detailed_caption}[kind](scene)


# ---------------------------------------------------------------------------------------------- masks

def inpaint_mask(scene: Scene, index: int = 0, size: int = 64, margin: float = 0.06) -> Image.Image:
    """Mode-L mask (255 = repaint) of the box around shape `index`, grown by `margin` of the side and
    snapped outward to the 8-pixel latent grid, as inpainting masks are drawn by hand."""
    s = scene.shapes[index]
    fx, fy = POSITIONS[s.position]
    r = (SIZES[s.size] * 1.15 + margin) * size
    x0, y0 = max(0, int((fx * size - r) // 8 * 8)), max(0, int((fy * size - r) // 8 * 8))
    x1, y1 = min(size, int(-(-(fx * size + r) // 8) * 8)), min(size, int(-(-(fy * size + r) // 8) * 8))
    m = Image.new("L", (size, size), 0)
    ImageDraw.Draw(m).rectangle([x0, y0, x1 - 1, y1 - 1], fill=255)
    return m


OUTPAINT_SIDES = ["left", "right", "top", "bottom", "all"]


def outpaint_mask(side: str = "all", size: int = 64, width: int = 16) -> Image.Image:
    """Mode-L mask (255 = generate) of a border band `width` pixels wide on one side or all four."""
    m = Image.new("L", (size, size), 0)
    d = ImageDraw.Draw(m)
    if side in ("left", "all"):
        d.rectangle([0, 0, width - 1, size - 1], fill=255)
    if side in ("right", "all"):
        d.rectangle([size - width, 0, size - 1, size - 1], fill=255)
    if side in ("top", "all"):
        d.rectangle([0, 0, size - 1, width - 1], fill=255)
    if side in ("bottom", "all"):
        d.rectangle([0, size - width, size - 1, size - 1], fill=255)
    return m


# ---------------------------------------------------------------------------------------------- edits

EDIT_KINDS = ["recolour", "background", "reshape", "resize", "move", "remove", "add"]


def edit_triple(scene: Scene, rng: np.random.Generator) -> tuple[Scene, str, Scene]:
    """(source scene, instruction, target scene). Instructions follow the grammar in the README:
    'make the circle green', 'make the background yellow', 'turn the circle into a star',
    'make the circle small', 'move the circle to the right', 'remove the green star',
    'add a small yellow square on the right'."""
    shapes = list(scene.shapes)
    two = len(shapes) == 2
    kinds = [k for k in EDIT_KINDS if not (k == "move" and two) and not (k == "remove" and not two)
             and not (k == "add" and two)]
    kind = kinds[rng.integers(len(kinds))]
    i = int(rng.integers(len(shapes)))
    s = shapes[i]
    # Name a shape by kind alone when that is unambiguous, else by colour and kind.
    name = s.kind if not two or shapes[0].kind != shapes[1].kind else f"{s.colour} {s.kind}"
    used = {x.colour for x in shapes}
    if kind == "recolour":
        choices = [c for c in COLOURS if c not in used and c != scene.background]
        c = choices[rng.integers(len(choices))]
        shapes[i] = replace(s, colour=c)
        return scene, f"make the {name} {c}", Scene(tuple(shapes), scene.background)
    if kind == "background":
        choices = [c for c in COLOURS if c not in used and c != scene.background]
        c = choices[rng.integers(len(choices))]
        return scene, f"make the background {c}", Scene(scene.shapes, c)
    if kind == "reshape":
        choices = [k for k in SHAPES if k != s.kind and not (two and shapes[1 - i].kind == k and shapes[1 - i].colour == s.colour)]
        k = choices[rng.integers(len(choices))]
        shapes[i] = replace(s, kind=k)
        return scene, f"turn the {name} into a {k}", Scene(tuple(shapes), scene.background)
    if kind == "resize":
        new = "small" if s.size == "large" else "large"
        shapes[i] = replace(s, size=new)
        return scene, f"make the {name} {new}", Scene(tuple(shapes), scene.background)
    if kind == "move":
        choices = [p for p in POSITIONS if p != s.position]
        p = choices[rng.integers(len(choices))]
        shapes[i] = replace(s, position=p)
        where = "the centre" if p == "centre" else f"the {p}"
        return scene, f"move the {name} to {where}", Scene(tuple(shapes), scene.background)
    if kind == "remove":
        gone = shapes.pop(i)
        # The remaining shape keeps its place; removal names colour and kind.
        return scene, f"remove the {gone.colour} {gone.kind}", Scene(tuple(shapes), scene.background)
    # add: a single shape at the centre moves nowhere; the new one goes to a free side of the pair
    # that contains the old shape's position (the old shape keeps its position if it is on that pair).
    pair = [p for p in PAIRS if s.position in p]
    pair = pair[0] if pair else PAIRS[rng.integers(len(PAIRS))]
    old_pos = s.position if s.position in pair else pair[0]
    new_pos = pair[1] if old_pos == pair[0] else pair[0]
    choices = [c for c in COLOURS if c != scene.background and c != s.colour]
    c = choices[rng.integers(len(choices))]
    k = SHAPES[rng.integers(len(SHAPES))]
    size = "small" if rng.random() < 0.5 else "large"
    added = Shape(k, c, size, new_pos)
    moved = replace(s, position=old_pos)
    source = scene if old_pos == s.position else Scene((moved,), scene.background)
    target = Scene((moved, added) if pair.index(old_pos) == 0 else (added, moved), scene.background)
    return source, f"add a {size} {c} {k} {POSITION_PHRASE[new_pos]}", target


# ---------------------------------------------------------------------------------------------- datasets

def render_array(scene: Scene, size: int = 64) -> np.ndarray:
    return np.asarray(render(scene, size), dtype=np.uint8)


def dataset(n: int, seed: int, size: int = 64) -> tuple[np.ndarray, list[Scene]]:
    """n scenes of stream `seed` and their images as uint8 [n, size, size, 3]."""
    scenes = [scene_at(seed, i) for i in range(n)]
    return np.stack([render_array(s, size) for s in scenes]), scenes


def _preview(path: str, seed: int, n: int, size: int) -> None:
    cols = 8
    rows = -(-n // cols)
    cell = size * 2
    sheet = Image.new("RGB", (cols * cell, rows * cell * 2), (128, 128, 128))
    lines = []
    for i in range(n):
        sc = scene_at(seed, i)
        rng = np.random.default_rng([seed, i, 1])
        src, instr, tgt = edit_triple(sc, rng)
        x, y = (i % cols) * cell, (i // cols) * cell * 2
        sheet.paste(render(src, size).resize((cell, cell), Image.Resampling.NEAREST), (x, y))
        sheet.paste(render(tgt, size).resize((cell, cell), Image.Resampling.NEAREST), (x, y + cell))
        lines.append(f"{i:3d}  short: {short_caption(sc)}\n     medium: {medium_caption(sc)}\n"
                     f"     detailed: {detailed_caption(sc)}\n     edit (row below): {instr}")
    sheet.save(path)
    with open(path.rsplit(".", 1)[0] + ".txt", "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", path, "and its .txt (top: source scene, bottom: edit target)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preview", metavar="PNG", help="write a contact sheet (sources over edit targets) and captions")
    ap.add_argument("--print", type=int, default=0, metavar="N", help="print N scenes' captions and an edit each")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--size", type=int, default=64, choices=[64, 128])
    a = ap.parse_args()
    if a.preview:
        _preview(a.preview, a.seed, a.n, a.size)
    for i in range(a.print):
        sc = scene_at(a.seed, i)
        _, instr, tgt = edit_triple(sc, np.random.default_rng([a.seed, i, 1]))
        print(f"{short_caption(sc)!r} -> {detailed_caption(sc)!r} | edit {instr!r} -> {detailed_caption(tgt)!r}")


if __name__ == "__main__":
    main()
