#!/usr/bin/env python3
"""Semantic check of the miniature SD pipeline (Assets/models/mini-sd): render prompts of the world
and measure, per region, the fraction of pixels whose nearest palette colour is the expected one.

    tools/.venv/bin/python tools/mini/check_sd.py                        # diffusers (PNDM, 25 steps, cfg 6)
    tools/.venv/bin/python tools/mini/check_sd.py --llmga .build/release/llmga   # also through the CLI,
                                                                          # with the max |diff| to diffusers

Regions of a 64x64 image: centre = the middle 12x12, border = the outer 6-pixel ring, left/right/top/
bottom = a 12x12 square around that position's shape centre. Writes the images to tools/mini/.work/check/.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import world  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "Assets/models/mini-sd"
OUTDIR = ROOT / "tools/mini/.work/check"
MODEL_DIR = [MODEL]

# (prompt, {region: expected colour})
CASES = [
    ("a red circle on a blue background", {"centre": "red", "border": "blue"}),
    ("a yellow square on a green background", {"centre": "yellow", "border": "green"}),
    ("a white star on a black background", {"centre": "white", "border": "black"}),
    ("a large green circle in the centre of a plain purple background", {"centre": "green", "border": "purple"}),
    ("a blue triangle on an orange background", {"centre": "blue", "border": "orange"}),
    ("a large red square on the left of a plain yellow background", {"left": "red", "right": "yellow"}),
]
SEEDS = [1, 2, 3]
STEPS, CFG, NEGATIVE = 25, 6.0, ""

# The scan (--scan): 10 "a C1 S on a C2 background" prompts x seeds 1-4. A case passes when >= 60% of the
# centre is the shape's colour and >= 80% of the border the background's (the criteria of MiniSDCLITests).
SCAN = [("red", "circle", "blue"), ("yellow", "square", "green"), ("white", "star", "black"),
        ("green", "circle", "purple"), ("blue", "triangle", "orange"), ("black", "square", "white"),
        ("orange", "circle", "blue"), ("purple", "square", "yellow"), ("red", "triangle", "white"),
        ("yellow", "circle", "purple")]
SCAN_SEEDS = [1, 2, 3, 4]
# Position prompts (reported, not counted): the shape's 12x12 square and the opposite side's.
SCAN_POS = [("a large red square on the left of a plain yellow background", {"left": "red", "right": "yellow"}),
            ("a large blue circle on the right of a plain white background", {"right": "blue", "left": "white"}),
            ("a large green square at the top of a plain black background", {"top": "green", "bottom": "black"})]
CENTRE_MIN, BORDER_MIN = 0.6, 0.8


def scan_prompt(c1: str, s: str, c2: str) -> str:
    return f"{world.article(c1)} {c1} {s} on {world.article(c2)} {c2} background"


def render_pipe(pipe, prompt: str, seed: int, steps: int = STEPS, cfg: float = CFG) -> np.ndarray:
    import torch
    g = torch.Generator().manual_seed(seed)
    im = pipe(prompt, negative_prompt=NEGATIVE, height=64, width=64, num_inference_steps=steps,
              guidance_scale=cfg, generator=g).images[0]
    return np.asarray(im)


def scan(pipe, cases=None, seeds=None, verbose=True, steps: int = STEPS) -> int:
    """Runs the scan with a loaded pipeline; prints one line per case, returns the number that pass."""
    cases, seeds = cases or SCAN, seeds or SCAN_SEEDS
    passed = 0
    for c1, s, c2 in cases:
        prompt, cells = scan_prompt(c1, s, c2), []
        for seed in seeds:
            f = fractions(render_pipe(pipe, prompt, seed, steps), {"centre": c1, "border": c2})
            ok = f["centre"] >= CENTRE_MIN and f["border"] >= BORDER_MIN
            passed += ok
            cells.append(f"s{seed} {f['centre']:.2f}/{f['border']:.2f}{'*' if ok else ' '}")
        if verbose:
            print(f"  {prompt:45s} " + "  ".join(cells), flush=True)
    if verbose:
        print(f"  scan: {passed}/{len(cases) * len(seeds)} pass (centre >= {CENTRE_MIN}, border >= {BORDER_MIN})",
              flush=True)
    return passed


def scan_positions(pipe, seeds=None, steps: int = STEPS) -> None:
    for prompt, expect in SCAN_POS:
        cells = []
        for seed in seeds or SCAN_SEEDS:
            f = fractions(render_pipe(pipe, prompt, seed, steps), expect)
            cells.append(f"s{seed} " + "/".join(f"{v:.2f}" for v in f.values()))
        print(f"  {prompt:62s} " + "  ".join(cells), flush=True)


def region(name: str, size: int = 64) -> np.ndarray:
    m = np.zeros((size, size), bool)
    if name == "border":
        b = size * 6 // 64
        m[:b, :] = m[-b:, :] = m[:, :b] = m[:, -b:] = True
        return m
    fx, fy = world.POSITIONS[name]
    h = size * 6 // 64
    cx, cy = int(fx * size), int(fy * size)
    m[cy - h:cy + h, cx - h:cx + h] = True
    return m


def nearest_palette(img: np.ndarray) -> np.ndarray:
    pal = np.array(list(world.PALETTE.values()), np.float32)
    d = ((img[..., None, :].astype(np.float32) - pal) ** 2).sum(-1)
    return d.argmin(-1)


def fractions(img: np.ndarray, expect: dict[str, str]) -> dict[str, float]:
    lab = nearest_palette(img)
    return {r: float((lab[region(r, img.shape[0])] == world.COLOURS.index(c)).mean()) for r, c in expect.items()}


def diffusers_images():
    import torch
    from diffusers import StableDiffusionPipeline
    torch.set_num_threads(1)
    pipe = StableDiffusionPipeline.from_pretrained(MODEL_DIR[0], safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    out = {}
    for i, (prompt, _) in enumerate(CASES):
        for seed in SEEDS:
            g = torch.Generator().manual_seed(seed)
            im = pipe(prompt, negative_prompt=NEGATIVE, height=64, width=64, num_inference_steps=STEPS,
                      guidance_scale=CFG, generator=g).images[0]
            im.save(OUTDIR / f"diffusers-{i}-{seed}.png")
            out[(i, seed)] = np.asarray(im)
    return out


def llmga_images(binary: str):
    out = {}
    for i, (prompt, _) in enumerate(CASES):
        for seed in SEEDS:
            r = subprocess.run([binary, "run", str(ROOT / "Workflows/t2i.yaml"), "--cache", "none", "--events", "none",
                                "--set", f"model={MODEL_DIR[0]}", "--set", f"prompt={prompt}", "--set", f"negative={NEGATIVE}",
                                "--set", f"seed={seed}", "--set", f"steps={STEPS}", "--set", f"cfg={CFG}",
                                "--set", "width=64", "--set", "height=64"], cwd=OUTDIR, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"llmga failed ({r.returncode}): {r.stderr}")
            p = OUTDIR / f"out/t2i-{seed}.png"
            im = Image.open(p).convert("RGB")
            im.save(OUTDIR / f"llmga-{i}-{seed}.png")
            out[(i, seed)] = np.asarray(im)
    return out


def llmga_mini_t2i(binary: str, prompt: str, seed: int) -> np.ndarray:
    """One image through `llmga run Workflows/mini-t2i.yaml` (what MiniSDCLITests runs)."""
    r = subprocess.run([binary, "run", str(ROOT / "Workflows/mini-t2i.yaml"), "--cache", "none", "--events", "none",
                        "--set", f"model={MODEL_DIR[0]}", "--set", f"prompt={prompt}", "--set", f"seed={seed}"],
                       cwd=OUTDIR, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"llmga failed ({r.returncode}): {r.stderr}")
    return np.asarray(Image.open(OUTDIR / f"out/mini-t2i-{seed}.png").convert("RGB"))


def llmga_scan(binary: str, pipe=None) -> int:
    """The scan through the binary (MiniSDCLITests' workflow and thresholds); with a pipeline, also the max
    |llmga - diffusers| per image."""
    passed = 0
    for c1, s, c2 in SCAN:
        prompt, cells = scan_prompt(c1, s, c2), []
        for seed in SCAN_SEEDS:
            im = llmga_mini_t2i(binary, prompt, seed)
            f = fractions(im, {"centre": c1, "border": c2})
            ok = f["centre"] >= CENTRE_MIN and f["border"] >= BORDER_MIN
            passed += ok
            d = "" if pipe is None else f" d={np.abs(im.astype(int) - render_pipe(pipe, prompt, seed).astype(int)).max()}"
            cells.append(f"s{seed} {f['centre']:.3f}/{f['border']:.3f}{'*' if ok else ' '}{d}")
        print(f"  {prompt:45s} " + "  ".join(cells), flush=True)
    print(f"  llmga scan: {passed}/{len(SCAN) * len(SCAN_SEEDS)} pass", flush=True)
    return passed


def report(name, images, ref=None):
    print(f"== {name}: fraction of each region whose nearest palette colour is the expected one (seeds {SEEDS})")
    worst = 1.0
    for i, (prompt, expect) in enumerate(CASES):
        cells = []
        for seed in SEEDS:
            f = fractions(images[(i, seed)], expect)
            worst = min(worst, *f.values())
            s = " ".join(f"{r}={c}:{v:.2f}" for (r, c), v in zip(expect.items(), f.values()))
            if ref is not None:
                s += f" |diff|max={np.abs(images[(i, seed)].astype(int) - ref[(i, seed)].astype(int)).max()}"
            cells.append(s)
        print(f"{prompt!r}\n    " + "\n    ".join(cells))
    print(f"   worst region fraction: {worst:.2f}")


# ---------------------------------------------------------------------------------------------- inpainting

INPAINT_MODEL = ROOT / "Assets/models/mini-sd-inpaint"
EXAMPLES = ROOT / "Assets/images/mini"
_RED_CIRCLE = world.Scene((world.Shape("circle", "red", "large", "centre"),), "blue")
_YELLOW_SQUARE = world.Scene((world.Shape("square", "yellow", "large", "centre"),), "purple")
# (name, example image file stem, scene, mask, prompt, colour the masked shape area must take (None: no
# shape pixels under the mask), colour the masked background must take)
INPAINT_CASES = [
    ("inpaint", "red-circle-blue", _RED_CIRCLE, lambda: world.inpaint_mask(_RED_CIRCLE, 0),
     "a red circle on a blue background", "red", "blue"),
    ("recolour", "red-circle-blue", _RED_CIRCLE, lambda: world.inpaint_mask(_RED_CIRCLE, 0),
     "a green circle on a blue background", "green", "blue"),
    ("outpaint", "yellow-square-purple-outpaint", _YELLOW_SQUARE, lambda: world.outpaint_mask("all", 64, 16),
     "a yellow square on a purple background", None, "purple"),
]


def inpaint_fractions(out: np.ndarray, scene, mask: np.ndarray, shape_colour, bg_colour) -> dict[str, float]:
    """shape: masked pixels that were the shape (shape mask >= 50%) now in shape_colour; bg: masked pixels
    that were background (shape mask 0) now in bg_colour; kept: unmasked pixels whose nearest palette colour
    is the input's."""
    lab, src = nearest_palette(out), nearest_palette(np.asarray(world.render(scene)))
    sm = np.asarray(world.shape_mask(scene.shapes[0]))
    m = mask >= 128
    r = {}
    if shape_colour is not None:
        r["shape"] = float((lab[m & (sm >= 128)] == world.COLOURS.index(shape_colour)).mean())
    r["bg"] = float((lab[m & (sm == 0)] == world.COLOURS.index(bg_colour)).mean())
    r["kept"] = float((lab[~m] == src[~m]).mean())
    return r


def inpaint_checks(pipe, seeds=None, verbose=True, save_dir: Path | None = None) -> dict[str, float]:
    """Runs INPAINT_CASES through a StableDiffusionInpaintPipeline (PNDM 25 steps, cfg 6); prints per seed,
    returns each case's metrics averaged over the seeds."""
    import torch
    from PIL import Image as _I
    means = {}
    for name, _, scene, mk, prompt, sc, bc in INPAINT_CASES:
        image, mask = world.render(scene), mk()
        rows = []
        for seed in seeds or SCAN_SEEDS:
            g = torch.Generator().manual_seed(seed)
            im = pipe(prompt, image=image, mask_image=mask, negative_prompt=NEGATIVE, height=64, width=64,
                      num_inference_steps=STEPS, guidance_scale=CFG, generator=g).images[0]
            if save_dir is not None:
                im.save(save_dir / f"inpaint-{name}-{seed}.png")
            f = inpaint_fractions(np.asarray(im), scene, np.asarray(mask), sc, bc)
            rows.append(f)
            if verbose:
                print(f"  {name:9s} {prompt!r} seed {seed}: " + " ".join(f"{k}={v:.3f}" for k, v in f.items()), flush=True)
        for k in rows[0]:
            means[f"{name}.{k}"] = float(np.mean([r[k] for r in rows]))
    return means


def write_examples() -> None:
    """The example inputs under Assets/images/mini/: 64x64 RGB images and L-mode masks (255 = generate)."""
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    done = set()
    for _, stem, scene, mk, *_ in INPAINT_CASES:
        if stem in done:
            continue
        done.add(stem)
        base = stem.removesuffix("-outpaint")
        world.render(scene).save(EXAMPLES / f"{base}.png", optimize=True)
        mk().save(EXAMPLES / f"{stem}-mask.png" if stem == base else EXAMPLES / f"{stem}-mask.png", optimize=True)
        print("wrote", EXAMPLES / f"{base}.png", EXAMPLES / f"{stem}-mask.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmga", help="path to the llmga binary: also render through Workflows/t2i.yaml")
    ap.add_argument("--no-diffusers", action="store_true")
    ap.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    ap.add_argument("--scan", action="store_true", help="the 40-case scan (10 prompts x seeds 1-4) and exit")
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--inpaint", action="store_true",
                    help="inpaint/outpaint checks with Assets/models/mini-sd-inpaint (seeds 1-4) and exit")
    ap.add_argument("--examples", action="store_true", help="write the example images/masks and exit")
    a = ap.parse_args()
    if a.examples:
        write_examples()
        return
    if a.inpaint:
        import torch
        from diffusers import StableDiffusionInpaintPipeline
        torch.set_num_threads(1)
        OUTDIR.mkdir(parents=True, exist_ok=True)
        pipe = StableDiffusionInpaintPipeline.from_pretrained(a.model if a.model != str(MODEL) else INPAINT_MODEL,
                                                              safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        r = inpaint_checks(pipe, save_dir=OUTDIR)
        print("  means: " + " ".join(f"{k}={v:.3f}" for k, v in r.items()))
        return
    SEEDS[:] = a.seeds
    MODEL_DIR[0] = Path(a.model)
    OUTDIR.mkdir(parents=True, exist_ok=True)
    if a.scan:
        import torch
        from diffusers import StableDiffusionPipeline
        torch.set_num_threads(1)
        pipe = StableDiffusionPipeline.from_pretrained(MODEL_DIR[0], safety_checker=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        if a.llmga:
            llmga_scan(a.llmga, pipe)
            return
        scan(pipe)
        print("  positions (shape's square / opposite square):")
        scan_positions(pipe)
        return
    ref = None
    if not a.no_diffusers:
        ref = diffusers_images()
        report("diffusers", ref)
    if a.llmga:
        report("llmga", llmga_images(a.llmga), ref)
    # A contact sheet: rows = cases, columns = seeds (diffusers, then llmga when present).
    files = sorted(OUTDIR.glob("*-*-*.png"))
    if files:
        kinds = [k for k in ("diffusers", "llmga") if (OUTDIR / f"{k}-0-{SEEDS[0]}.png").exists()]
        sheet = Image.new("RGB", (64 * len(SEEDS) * len(kinds) * 2, 128 * len(CASES)), (128, 128, 128))
        for i in range(len(CASES)):
            for k, kind in enumerate(kinds):
                for j, seed in enumerate(SEEDS):
                    p = OUTDIR / f"{kind}-{i}-{seed}.png"
                    if p.exists():
                        sheet.paste(Image.open(p).resize((128, 128), Image.Resampling.NEAREST),
                                    ((k * len(SEEDS) + j) * 128, i * 128))
        sheet.save(OUTDIR / "sheet.png")
        print("wrote", OUTDIR / "sheet.png")


if __name__ == "__main__":
    main()
