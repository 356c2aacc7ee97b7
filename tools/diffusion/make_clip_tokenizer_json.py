"""Fixture for CLIP tokenizer folders that hold only tokenizer.json (what transformers 5 writes:
`CLIPTokenizer.save_pretrained` emits tokenizer.json + tokenizer_config.json, no vocab.json/merges.txt).

Re-saves the small fixture tokenizer (Tests/DiffusionTests/Fixtures/clip/tok-small) with transformers,
then records the ids transformers gives when loading the saved folder back, on the same strings as
expected.json's small_tokens plus special-token spellings.

    tools/.venv/bin/python tools/diffusion/make_clip_tokenizer_json.py
"""
import json
import os
import shutil

from transformers import CLIPTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "DiffusionTests", "Fixtures", "clip")
OUT = os.path.join(ROOT, "tok-json")

shutil.rmtree(OUT, ignore_errors=True)
CLIPTokenizer.from_pretrained(os.path.join(ROOT, "tok-small")).save_pretrained(OUT)
assert sorted(os.listdir(OUT)) == ["tokenizer.json", "tokenizer_config.json"], os.listdir(OUT)
tok = CLIPTokenizer.from_pretrained(OUT)

texts = [c["text"] for c in json.load(open(os.path.join(ROOT, "expected.json")))["small_tokens"]]
texts += ["<|startoftext|>a cat<|endoftext|>", "<|STARTOFTEXT|> x <|ENDOFTEXT|>", "", "   "]
cases = [{"text": t, "ids": tok(t, add_special_tokens=False).input_ids,
          "padded77": tok(t, padding="max_length", max_length=77, truncation=True).input_ids} for t in texts]
with open(os.path.join(OUT, "..", "tok-json-cases.json"), "w", encoding="utf-8") as f:
    json.dump({"cases": cases}, f, ensure_ascii=False, indent=1)
print(f"{len(cases)} cases, folder {os.path.normpath(OUT)}")
