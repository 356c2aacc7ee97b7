"""Shared pieces of the miniature LLMGA prompter (train_prompter.py, check_prompter.py): the qwen_2 chat
template exactly as Sources/Prompter/Chat/ChatTemplate.swift renders it, LLaVA's tokenizer_image_token, the
task samples drawn from world.py, the model definition and the loader of the shipped folder.
"""
from __future__ import annotations

import json
import os

import numpy as np
import torch
from safetensors.torch import load_file

import world as W

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ASSET = os.path.join(ROOT, "Assets", "models", "mini-llmga")

SYSTEM = "A conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers."
IMAGE_TOKEN_INDEX = -200
MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
IMAGE_SIZE, PATCH = 64, 8
N_IMG = (IMAGE_SIZE // PATCH) ** 2

# Sources/Prompter/Chat/Tasks.swift (TaskPhrasings); index 0 is what the Swift session sends by default.
T2I_SUFFIXES = ["Generate this image based on given keywords.", "generate the image.", "What does it look like?",
                "Can you design this image?"]
EXPAND = ["Please provide a detailed description.", "Expand it.", "Enrich this statement."]
SIMILAR = ["Generate a similar image.", "Recreate the given image.", "Could you give me an image that looks similar?"]
DESCRIBE = ["Describe the image."]
INPAINT = ["Inpaint this image.", "Please fill in the blanks in the picture.", "Complete this image."]
OUTPAINT = ["Extend this image.", "Outpaint this image.",
            "Create a seamless continuation of this scene beyond its current boundaries."]
EDIT_FIRST = "Generate a similar image"


def render_prompt(messages, add_generation_prompt=True):
    """ChatFamily.qwen2 in ChatTemplate.swift. messages: [(role, text, has_image)]."""
    out = "<|im_start|>system\n" + SYSTEM + "<|im_end|>"
    for role, text, img in messages:
        out += "<|im_start|>" + role + "\n" + ("<image>\n" + text if img else text) + "<|im_end|>"
    if add_generation_prompt and messages[-1][0] == "user":
        out += "<|im_start|>assistant\n"
    return out


class Tok:
    """tokenizers.Tokenizer with LLaVA's tokenizer_image_token (Qwen2: no BOS, so chunks are just joined)."""

    def __init__(self, path):
        from tokenizers import Tokenizer
        self.t = Tokenizer.from_file(path)
        self.im_end = self.t.token_to_id("<|im_end|>")
        self.pad = self.t.token_to_id("<|endoftext|>")
        self.cache = {}

    def encode(self, s):
        r = self.cache.get(s)
        if r is None:
            r = self.t.encode(s, add_special_tokens=True).ids
            if len(self.cache) < 200000:
                self.cache[s] = r
        return r

    def image_ids(self, prompt):
        chunks = [self.encode(c) for c in prompt.split("<image>")]
        ids = []
        for i, c in enumerate(chunks):
            if i:
                ids.append(IMAGE_TOKEN_INDEX)
            ids += c
        return ids

    def decode(self, ids):
        return self.t.decode(ids, skip_special_tokens=False)


def tagged(c):
    return "<gen_image> " + c + " </gen_image>"


def pixel_array(img):
    """CLIPImageProcessor on a 64x64 RGB picture: resize/crop to 64 are identities; /255, normalise (float32)."""
    a = np.asarray(img.convert("RGB"), dtype=np.float32) * np.float32(1 / 255)
    a = (a - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    return a.transpose(2, 0, 1).copy()


def masked_image(img, mask):
    """image * (1 - mask) with the mask binarised at 0.5, as PrompterSession.masked."""
    a = np.asarray(img.convert("RGB")).copy()
    a[np.asarray(mask) >= 128] = 0
    from PIL import Image
    return Image.fromarray(a, "RGB")


TASKS = ["t2i", "similar", "describe", "inpaint", "outpaint", "edit", "expand"]


def make_sample(task, seed, index, alt_prob=0.0, rng=None):
    """One conversation for `task` on scene `index` of stream `seed`.
    Returns dict(turns=[(user_text, has_image, reply)], image=PIL or None, scene, extra)."""
    rng = rng or np.random.default_rng([seed, index, 7])
    sc = W.scene_at(seed, index)

    def pick(lst):
        return lst[0] if rng.random() >= alt_prob else lst[int(rng.integers(len(lst)))]

    if task == "t2i":
        return dict(turns=[(W.short_caption(sc) + " " + pick(T2I_SUFFIXES), False, tagged(W.detailed_caption(sc)))],
                    image=None, scene=sc)
    if task == "expand":
        return dict(turns=[(W.short_caption(sc) + " " + pick(EXPAND), False, W.detailed_caption(sc))], image=None, scene=sc)
    if task == "similar":
        return dict(turns=[(pick(SIMILAR), True, tagged(W.detailed_caption(sc)))], image=W.render(sc), scene=sc)
    if task == "describe":
        return dict(turns=[(DESCRIBE[0], True, W.detailed_caption(sc))], image=W.render(sc), scene=sc)
    if task == "inpaint":
        i = int(rng.integers(len(sc.shapes)))
        m = W.inpaint_mask(sc, i)
        return dict(turns=[(pick(INPAINT), True, tagged(W.detailed_caption(sc)))], image=masked_image(W.render(sc), m),
                    scene=sc, mask=m, clean=W.render(sc), hidden=i)
    if task == "outpaint":
        side = W.OUTPAINT_SIDES[int(rng.integers(len(W.OUTPAINT_SIDES)))]
        m = W.outpaint_mask(side)
        return dict(turns=[(pick(OUTPAINT), True, tagged(W.detailed_caption(sc)))], image=masked_image(W.render(sc), m),
                    scene=sc, mask=m, clean=W.render(sc), side=side)
    if task == "edit":
        src, instr, tgt = W.edit_triple(sc, np.random.default_rng([seed, index, 1]))
        return dict(turns=[(EDIT_FIRST, True, tagged(W.detailed_caption(src))), (instr, False, tagged(W.detailed_caption(tgt)))],
                    image=W.render(src), scene=src, target=tgt, instruction=instr)
    raise ValueError(task)


def sample_ids(tok, sample):
    """(ids with one -200, loss mask) of a whole conversation, built turn by turn exactly as the Swift session
    renders it: prompt = render(history + user turn, generation prompt); reply = encode(reply) + <|im_end|>."""
    msgs, ids, mask = [], [], []
    for user, img, reply in sample["turns"]:
        msgs.append(("user", user, img))
        full = tok.image_ids(render_prompt(msgs))
        assert full[:len(ids)] == ids, "prefix property broken"
        new = full[len(ids):]
        ids += new
        mask += [0] * len(new)
        r = tok.encode(reply) + [tok.im_end]
        ids += r
        mask += [1] * len(r)
        msgs.append(("assistant", reply, False))
    return ids, mask


# ---------------------------------------------------------------------------------------------- model

def qwen2_config(vocab, eos, pad, **kw):
    from transformers import Qwen2Config
    c = dict(vocab_size=vocab, hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512, rms_norm_eps=1e-6, rope_theta=10000.0,
             tie_word_embeddings=False, bos_token_id=None, eos_token_id=eos, pad_token_id=pad)
    c.update(kw)
    return Qwen2Config(**c)


def clip_config():
    from transformers import CLIPVisionConfig
    return CLIPVisionConfig(hidden_size=96, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                            image_size=IMAGE_SIZE, patch_size=PATCH, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                            projection_dim=64)


class MiniLLaVA(torch.nn.Module):
    SELECT_LAYER = -2

    def __init__(self, qcfg, vcfg):
        super().__init__()
        from transformers import CLIPVisionModel, Qwen2ForCausalLM
        self.llm = Qwen2ForCausalLM(qcfg)
        self.vision = CLIPVisionModel(vcfg)
        h, v = qcfg.hidden_size, vcfg.hidden_size
        self.mm_projector = torch.nn.Sequential(torch.nn.Linear(v, h), torch.nn.GELU(), torch.nn.Linear(h, h))

    def tower(self, pv):
        out = self.vision(pixel_values=pv, output_hidden_states=True)
        return out.hidden_states[self.SELECT_LAYER][:, 1:]

    def embed(self, ids_rows, pv):
        """ids_rows: LongTensor [B, T] where image positions hold -200 expanded to N_IMG slots (value -200)."""
        slot = ids_rows == IMAGE_TOKEN_INDEX
        emb = self.llm.get_input_embeddings()(ids_rows.clamp(min=0))
        feats = None
        if pv is not None and pv.shape[0]:
            feats = self.tower(pv)
            proj = self.mm_projector(feats)
            emb = emb.masked_scatter(slot[..., None], proj.reshape(-1, proj.shape[-1]).to(emb.dtype))
        return emb, feats


def expand_image(ids):
    """-200 → N_IMG slots of -200 (the spliced positions)."""
    out = []
    for t in ids:
        out += [t] * N_IMG if t == IMAGE_TOKEN_INDEX else [t]
    return out


def load_shipped(folder=ASSET):
    """The shipped folder as float32 modules (F16 weights converted), nothing from training checkpoints."""
    from transformers import CLIPVisionModel, Qwen2ForCausalLM
    cfg = json.load(open(os.path.join(folder, "config.json")))
    qcfg = qwen2_config(cfg["vocab_size"], cfg["eos_token_id"], None, hidden_size=cfg["hidden_size"],
                        intermediate_size=cfg["intermediate_size"], num_hidden_layers=cfg["num_hidden_layers"],
                        num_attention_heads=cfg["num_attention_heads"], num_key_value_heads=cfg["num_key_value_heads"],
                        max_position_embeddings=cfg["max_position_embeddings"], rms_norm_eps=cfg["rms_norm_eps"],
                        tie_word_embeddings=cfg["tie_word_embeddings"])
    sd = {k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    llm = Qwen2ForCausalLM(qcfg).eval()
    lsd = {k: v for k, v in sd.items() if not k.startswith("model.mm_projector.")}
    r = llm.load_state_dict(lsd, strict=True)
    vis = CLIPVisionModel.from_pretrained(os.path.join(folder, cfg["mm_vision_tower"]), dtype=torch.float32).eval()
    h = cfg["hidden_size"]
    proj = torch.nn.Sequential(torch.nn.Linear(cfg["mm_hidden_size"], h), torch.nn.GELU(), torch.nn.Linear(h, h))
    proj.load_state_dict({k[len("model.mm_projector."):]: v for k, v in sd.items() if k.startswith("model.mm_projector.")})
    m = MiniLLaVA.__new__(MiniLLaVA)
    torch.nn.Module.__init__(m)
    m.llm, m.vision, m.mm_projector = llm, vis, proj.eval()
    m.SELECT_LAYER = cfg["mm_vision_select_layer"]
    return m, Tok(os.path.join(folder, "tokenizer.json"))


@torch.no_grad()
def greedy(model, tok, sample, max_new=64):
    """Greedy replies to each user turn in turn (the history keeps the model's own replies, as the Swift
    session does). Returns [(reply_text, reply_ids)]."""
    pv = torch.from_numpy(pixel_array(sample["image"]))[None] if sample.get("image") is not None else None
    msgs, out = [], []
    for user, img, _ in sample["turns"]:
        msgs.append(("user", user, img))
        ids = expand_image(tok.image_ids(render_prompt(msgs)))
        emb, _ = model.embed(torch.tensor([ids]), pv if img or any(m[2] for m in msgs) else None)
        res = model.llm(inputs_embeds=emb, use_cache=True)
        past, new = res.past_key_values, []
        nxt = int(res.logits[0, -1].argmax())
        while True:
            new.append(nxt)
            if nxt in (tok.im_end, tok.pad) or len(new) >= max_new:
                break
            res = model.llm(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
            past = res.past_key_values
            nxt = int(res.logits[0, -1].argmax())
        body = [t for t in new if t not in (tok.im_end, tok.pad)]
        text = tok.decode(body).strip()
        out.append((text, new))
        msgs.append(("assistant", text, False))
    return out
