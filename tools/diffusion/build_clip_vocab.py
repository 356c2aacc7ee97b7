#!/usr/bin/env python3
"""Rebuilds Sources/Diffusion/Resources/clip/vocab.json and Sources/Diffusion/Resources/clip/merges.txt (the OpenAI CLIP BPE vocabulary, MIT
licence, OpenAI) from `bpe_simple_vocab_16e6.txt.gz`, the file OpenAI's CLIP repository ships and the
PyPI package open_clip_torch copies (open_clip/bpe_simple_vocab_16e6.txt.gz).

The construction is the one in CLIP's `simple_tokenizer.py` / transformers' slow `CLIPTokenizer`:
  merges = lines[1 : 49152 - 256 - 2 + 1]                       (48,894 merges; line 0 is a header)
  vocab  = bytes_to_unicode() values (256)
         + the same with "</w>" appended (256)
         + "".join(merge) for each merge, in order (48,894)
         + "<|startoftext|>" (49406), "<|endoftext|>" (49407)     -> 49,408 tokens
merges.txt = "#version: 0.2" header + the 48,894 merge lines (as the Hugging Face model folders have it).

Then checks that transformers' CLIPTokenizer built from the written files gives exactly the ids of
open_clip's SimpleTokenizer (OpenAI's reference BPE built from the .gz) on a large text sample.

    python3 -m venv tools/.venv-clip && tools/.venv-clip/bin/pip install --no-deps open_clip_torch ftfy
    PYTHONPATH=tools/.venv-clip/lib/python3.11/site-packages \
        /work/main/tools/.venv/bin/python tools/diffusion/build_clip_vocab.py
"""

import glob
import gzip
import importlib.util
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Sources", "Diffusion", "Resources", "clip")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def load_open_clip_tokenizer_module():
    """Imports open_clip/tokenizer.py alone (the package __init__ pulls in model code we do not need)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        sys.exit("open_clip_torch is not importable: see the docstring")
    path = os.path.join(os.path.dirname(spec.origin), "tokenizer.py")
    mod_spec = importlib.util.spec_from_file_location("open_clip_tokenizer", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod, os.path.join(os.path.dirname(spec.origin), "bpe_simple_vocab_16e6.txt.gz")


def build(gz_path):
    lines = gzip.open(gz_path).read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    assert len(merges) == 48894, len(merges)
    pairs = [tuple(m.split()) for m in merges]
    assert all(len(p) == 2 for p in pairs)
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(p) for p in pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == 49408
    encoder = {tok: i for i, tok in enumerate(vocab)}
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(encoder, ensure_ascii=False))
    with open(os.path.join(OUT, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for a, b in pairs:
            f.write(f"{a} {b}\n")
    return encoder


def sample_lines():
    """A few MB of real text: the documentation strings and comments of installed Python packages."""
    import transformers

    base = os.path.dirname(os.path.dirname(transformers.__file__))
    files = sorted(glob.glob(os.path.join(base, "transformers", "models", "*", "modeling_*.py")))[:400]
    out = []
    for p in files:
        with open(p, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(line)
    return out


def main():
    oc, gz = load_open_clip_tokenizer_module()
    encoder = build(gz)
    ref = oc.SimpleTokenizer(bpe_path=gz)
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer(vocab=os.path.join(OUT, "vocab.json"), merges=os.path.join(OUT, "merges.txt"))
    tok2 = CLIPTokenizer.from_pretrained(OUT)  # the way a model folder is loaded
    assert len(tok2) == 49408, len(tok2)
    lines = sample_lines()
    checked = mismatched = tokens = 0
    for line in lines:
        # The reference cleans with ftfy + html.unescape; lines where that changes the text are skipped.
        cleaned = oc.whitespace_clean(oc.basic_clean(line)).lower()
        if cleaned != " ".join(line.split()).lower():
            continue
        a = ref.encode(line)
        b = tok2(line, add_special_tokens=False).input_ids
        checked += 1
        tokens += len(a)
        if a != b:
            mismatched += 1
            if mismatched < 5:
                print("MISMATCH", repr(line), a[:20], b[:20])
    print(f"vocab {len(encoder)} tokens, {48894} merges; sample: {checked} lines, {tokens} tokens, {mismatched} mismatches")
    assert checked > 50000 and tokens > 1000000 and mismatched == 0


if __name__ == "__main__":
    main()
