#!/usr/bin/env python3
"""Checks the shipped miniature LLMGA prompter (Assets/models/mini-llmga) on held-out scenes and against llmga.

1. Accuracy: greedy replies (transformers, F32 from the F16 files, nothing from the training checkpoints) for
   every task on scenes of stream 1 (training draws from stream 0), with the exact user strings the Swift
   session sends. A detailed caption is parsed into (size, colour, kind, position) per shape and a background.
2. --images: writes the example pictures under Assets/images/mini/prompter/ (64x64 RGB PNG; inpaint/outpaint
   also the masked picture as the model sees it and the mask, L-mode, white = generate) and examples.json.
3. --llmga BIN: runs the same examples through `llmga run tools/mini/workflows/mini-prompter-*.yaml` (llmga.load
   with only `path`, llmga.prompter at temperature 0) and compares every reply with Python's, text for text.

    tools/.venv/bin/python tools/mini/check_prompter.py [--n 100] [--images] [--llmga .build/release/llmga]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import world as W  # noqa: E402
from prompter_common import ASSET, ROOT, TASKS, greedy, load_shipped, make_sample  # noqa: E402

FOLDER = ASSET
IMAGES = os.path.join(ROOT, "Assets", "images", "mini", "prompter")
SHAPE_RE = re.compile(r"a (small|large) (\w+) (circle|square|triangle|star) (in the centre|on the left|on the right|at the top|at the bottom)")
BG_RE = re.compile(r"plain (\w+) background")
PHRASE_POS = {v: k for k, v in W.POSITION_PHRASE.items()}


def prompt_of(reply):
    m = re.search(r"<gen_image>(.*?)(</gen_image>|$)", reply, re.S)
    return " ".join(m.group(1).split()) if m else None


def parse(caption):
    if caption is None:
        return None
    shapes = [(s, c, k, PHRASE_POS[p]) for s, c, k, p in SHAPE_RE.findall(caption)]
    bg = BG_RE.search(caption)
    return shapes, bg.group(1) if bg else None


def key(scene):
    return [(s.size, s.colour, s.kind, s.position) for s in scene.shapes], scene.background


def kinds_colours(p):
    return sorted((c, k) for _, c, k, _ in p[0]), p[1]


def score(task, s, replies):
    """{metric: bool} for one sample."""
    r = replies[-1][0]
    tagged = prompt_of(r)
    out = {}
    if task in ("t2i", "expand"):
        cap = tagged if task == "t2i" else r
        out["tagged" if task == "t2i" else "untagged"] = (tagged is not None) == (task == "t2i")
        p = parse(cap)
        want = sorted((x.colour, x.kind) for x in s["scene"].shapes)
        out["keywords (colour+shape)"] = p is not None and sorted((c, k) for _, c, k, _ in p[0]) == want
        out["background differs from the shapes"] = p is not None and p[1] is not None and p[1] not in [c for _, c, _, _ in p[0]]
        out["grammatical"] = cap is not None and re.fullmatch(
            r"a (small|large) \w+ \w+ (in the centre|on the left|on the right|at the top|at the bottom)"
            r"( and a (small|large) \w+ \w+ (in the centre|on the left|on the right|at the top|at the bottom), on| of) a plain \w+ background", cap) is not None
        return out
    if task == "edit":
        src, tgt = prompt_of(replies[0][0]), prompt_of(replies[1][0])
        out["source exact"] = src == W.detailed_caption(s["scene"])
        out["target exact"] = tgt == W.detailed_caption(s["target"])
        kind = next(k for k, pre in [("recolour/resize", "make the "), ("reshape", "turn "), ("move", "move "),
                                     ("remove", "remove "), ("add", "add ")] if s["instruction"].startswith(pre))
        if s["instruction"].startswith("make the background"):
            kind = "background"
        out["target exact: " + kind] = out["target exact"]
        p = parse(tgt)
        out["target kinds+colours+bg"] = p is not None and kinds_colours(p) == kinds_colours(key(s["target"]))
        return out
    cap = r if task == "describe" else tagged
    out["tagged" if task != "describe" else "untagged"] = (tagged is not None) == (task != "describe")
    p = parse(cap)
    want = key(s["scene"])
    out["exact caption"] = cap == W.detailed_caption(s["scene"])
    out["kinds+colours+bg"] = p is not None and kinds_colours(p) == kinds_colours(want)
    out["background"] = p is not None and p[1] == want[1]
    if task == "inpaint":
        vis = [x for i, x in enumerate(s["scene"].shapes) if i != s["hidden"]]
        out["visible shapes named"] = p is not None and all((x.size, x.colour, x.kind, x.position) in p[0] for x in vis)
    return out


def accuracy(model, tok, n):
    table = {}
    for task in TASKS:
        agg = {}
        for i in range(n):
            s = make_sample(task, 1, i)
            for k, v in score(task, s, greedy(model, tok, s)).items():
                agg.setdefault(k, []).append(v)
        table[task] = {k: sum(v) / len(v) for k, v in agg.items()}
        print(f"{task:9s} " + "  ".join(f"{k}: {100 * v:.0f}%" for k, v in table[task].items()), flush=True)
    return table


# ---------------------------------------------------------------------------------------------- examples

def examples():
    """The example requests (stream 1, held out)."""
    ex = [dict(name="t2i-green-square", mode="t2i", request="a green square"),
          dict(name="t2i-red-star", mode="t2i", request="a red star")]
    one = next(i for i in range(100) if len(W.scene_at(1, i).shapes) == 1)
    two = next(i for i in range(100) if len(W.scene_at(1, i).shapes) == 2)
    ex.append(dict(name="similar-1", mode="similar", scene=one))
    ex.append(dict(name="similar-2", mode="similar", scene=two))
    # inpaint: a two-shape scene with its second shape masked; outpaint: a band on the right of a one-shape scene.
    two2 = next(i for i in range(two + 1, 200) if len(W.scene_at(1, i).shapes) == 2)
    ex.append(dict(name="inpaint-1", mode="inpaint", scene=two2, hidden=1))
    one2 = next(i for i in range(one + 1, 200) if len(W.scene_at(1, i).shapes) == 1
                and W.scene_at(1, i).shapes[0].position not in ("right",))
    ex.append(dict(name="outpaint-1", mode="outpaint", scene=one2, side="right"))
    e = next(i for i in range(200) if W.edit_triple(W.scene_at(1, i), __import__("numpy").random.default_rng([1, i, 1]))[1].startswith("make the background"))
    ex.append(dict(name="edit-1", mode="edit", scene=e))
    return ex


def example_sample(e):
    from prompter_common import EDIT_FIRST, INPAINT, OUTPAINT, SIMILAR, masked_image, tagged
    import numpy as np
    if e["mode"] == "t2i":
        return dict(turns=[(e["request"] + " Generate this image based on given keywords.", False, None)], image=None)
    sc = W.scene_at(1, e["scene"])
    if e["mode"] == "similar":
        return dict(turns=[(SIMILAR[0], True, None)], image=W.render(sc), clean=W.render(sc), scene=sc)
    if e["mode"] == "inpaint":
        m = W.inpaint_mask(sc, e["hidden"])
        return dict(turns=[(INPAINT[0], True, None)], image=masked_image(W.render(sc), m), clean=W.render(sc), mask=m, scene=sc)
    if e["mode"] == "outpaint":
        m = W.outpaint_mask(e["side"])
        return dict(turns=[(OUTPAINT[0], True, None)], image=masked_image(W.render(sc), m), clean=W.render(sc), mask=m, scene=sc)
    src, instr, tgt = W.edit_triple(sc, np.random.default_rng([1, e["scene"], 1]))
    e["request"] = instr
    return dict(turns=[(EDIT_FIRST, True, None), (instr, False, None)], image=W.render(src), clean=W.render(src), scene=src,
                target=tgt)


def run_examples(model, tok, write_images, llmga):
    from prompter_common import greedy
    exs = examples()
    results = []
    for e in exs:
        s = example_sample(e)
        reps = greedy(model, tok, s)
        e["python"] = [r[0] for r in reps]
        e["python_ids"] = [r[1] for r in reps]
        if "scene" in s:
            e["truth"] = W.detailed_caption(s["scene"])
        if "target" in s:
            e["truth_target"] = W.detailed_caption(s["target"])
        if write_images and s.get("clean") is not None:
            os.makedirs(IMAGES, exist_ok=True)
            s["clean"].save(os.path.join(IMAGES, e["name"] + ".png"))
            if s.get("mask") is not None:
                s["image"].save(os.path.join(IMAGES, e["name"] + "-masked.png"))
                s["mask"].save(os.path.join(IMAGES, e["name"] + "-mask.png"))
        if llmga:
            e["llmga"], e["command"] = run_llmga(llmga, e)
            e["match"] = e["llmga"] == e["python"]
        print(json.dumps({k: v for k, v in e.items() if k != "python_ids"}), flush=True)
        results.append(e)
    if write_images:
        with open(os.path.join(IMAGES, "examples.json"), "w") as f:
            json.dump([{k: v for k, v in e.items() if k not in ("python_ids", "llmga", "match", "command")} for e in results], f, indent=1)
    return results


def run_llmga(binary, e):
    out = os.path.join(tempfile.mkdtemp(prefix="mini-prompter-"), e["name"])
    rel = os.path.relpath(FOLDER, ROOT)
    img = os.path.join("Assets", "images", "mini", "prompter", e["name"] + ".png")
    if e["mode"] == "t2i":
        wf, sets = "mini-prompter-text.yaml", [f"request={e['request']}"]
    elif e["mode"] in ("inpaint", "outpaint"):
        wf, sets = "mini-prompter-fill.yaml", [f"image={img}", f"mask={img[:-4]}-mask.png"]
    else:
        wf, sets = "mini-prompter-image.yaml", [f"image={img}"] + ([f"request={e['request']}"] if e["mode"] == "edit" else [])
    cmd = [binary, "run", os.path.join("tools", "mini", "workflows", wf), "--cache", "none", "--events", "none",
           "--set", f"prompter={rel}", "--set", f"mode={e['mode']}", "--set", f"out={out}"]
    for s in sets:
        cmd += ["--set", s]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.path.dirname(os.path.abspath(binary))
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    shown = "LD_LIBRARY_PATH=%s %s" % (env["LD_LIBRARY_PATH"], " ".join(("'%s'" % c) if " " in c else c for c in cmd))
    if p.returncode != 0:
        return ["llmga failed: " + (p.stderr or p.stdout)[-800:]], shown
    conv = json.load(open(out + ".conversation.json"))
    return [m["text"] for m in conv["messages"] if m["role"] == "assistant"], shown


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", default=ASSET)
    ap.add_argument("--n", type=int, default=100, help="held-out samples per task (0: skip the accuracy table)")
    ap.add_argument("--images", action="store_true", help="write the example pictures under Assets/images/mini/prompter")
    ap.add_argument("--llmga", help="an llmga binary: compare its replies with Python's")
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    global FOLDER
    FOLDER = os.path.abspath(a.folder)
    model, tok = load_shipped(a.folder)
    res = {}
    if a.n:
        res["accuracy"] = accuracy(model, tok, a.n)
    res["examples"] = run_examples(model, tok, a.images, a.llmga)
    if a.llmga:
        ok = all(e["match"] for e in res["examples"])
        print("llmga parity:", "all replies equal" if ok else "MISMATCH")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
