#!/usr/bin/env python3
"""Deterministic parity fixtures for the Swift `Prompter` tokenizers and chat templates.

No model hub is reachable, so this script TRAINS small tokenizers on a corpus written below, in the
styles of the LLMGA families, and saves them as the real file formats:

  qwen2/        tokenizer.json  byte-level BPE, NFC normalizer, Qwen2 split regex (\\p{N} single digits),
                                merges in the legacy "a b" string form, <|endoftext|> <|im_start|> <|im_end|>
  llama3/       tokenizer.json  byte-level BPE, Llama-3 split regex (\\p{N}{1,3}), ignore_merges, merges as
                                [a, b] arrays, TemplateProcessing post-processor adding <|begin_of_text|>,
                                header/eot specials, <image> (special), <mask> (lstrip, not special)
  gpt2/         tokenizer.json  byte-level BPE with the built-in GPT-2 regex (ByteLevel use_regex=true)
  llama2-spm/   tokenizer.model SentencePiece BPE, byte_fallback, split_digits, identity normalization,
                                add_dummy_prefix (Llama-2 / Vicuna style); tokenizer_config.json legacy=true
  mistral-spm/  tokenizer.model same style plus user-defined symbols; tokenizer_config.json legacy=false
  llama2-hfjson/ tokenizer.json the llama2-spm model converted by transformers (LlamaTokenizerFast from_slow):
                                the SentencePiece-as-tokenizer.json form (Metaspace/Prepend/ByteFallback)

For every folder, cases.json holds, for each tricky string: ids from the `tokenizers` library (with and
without special tokens, and with special-token parsing off), ids from transformers' AutoTokenizer
(slow LlamaTokenizer for the .model folders, as LLaVA loads it with use_fast=False), raw sentencepiece
ids, decodes, and LLaVA `tokenizer_image_token` results for prompts containing <image>.

chat/templates.json: Jinja chat templates written from LLMGA's llmga/llava/conversation.py, checked here against the
reference strings, and rendered with transformers' apply_chat_template for several conversations.

Versions (the LLMGA pin is transformers 4.37.2 / tokenizers 0.15.1; 4.46.3 is the closest release that
reads Llama-3 style files): transformers 4.46.3, tokenizers 0.20.3, sentencepiece 0.2.x.
Run:  tools/.venv-prompt/bin/python tools/prompter/make_tokenizer_fixtures.py
"""
import json
import os
import shutil
import sys
import tempfile

import sentencepiece as spm
import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers import AddedToken as TkAddedToken
import transformers
from transformers import AutoTokenizer, LlamaTokenizer, LlamaTokenizerFast, PreTrainedTokenizerFast

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "Tests", "PrompterTests", "Fixtures")

QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

CORPUS = [
    "A chat between a curious human and an artificial intelligence assistant.",
    "The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "Generate a similar image. Recreate the given image. Could you give me an image that looks similar?",
    "Inpaint this image. Please fill in the blanks in the picture. Complete this image.",
    "Extend this image. Outpaint this image. Create a seamless continuation of this scene beyond its current boundaries.",
    "<gen_image> A red fox in snow, highly detailed, cinematic lighting, 4k, trending on artstation. </gen_image>",
    "<gen_image> A majestic castle on a hill at sunset, golden hour, volumetric fog, ultra realistic. </gen_image>",
    "Please help me design a spaceship and show me its blueprint.",
    "I need a Chinese style painting for decoration. Please help me design it.",
    "Make it night. Make it snowy. Turn the cat into a dog. Add a rainbow in the sky.",
    "It's a beautiful day, isn't it? We'll see; they've said you're right, I'd agree, I'm sure.",
    "The year 2024 had 366 days; 3.14159 is pi and 1,000,000 is a million. Call 555-0199 at 10:30.",
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text]  # simple\n",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; }\n",
    "Café, naïve, résumé, façade, jalapeño, Zürich, São Paulo, Ærøskøbing, Łódź.",
    "一只在雪地里的红狐狸，细节丰富，电影级光照。请帮我设计一幅中国风的画。",
    "東京の夜景、ネオンサイン、雨に濡れた街。서울의 밤거리, 네온 사인.",
    "Привет, мир! Γειά σου κόσμε! مرحبا بالعالم! שלום עולם! नमस्ते दुनिया!",
    "Emoji: 🦊❄️🌙✨🎨🖼️ 👩‍🎨 🇨🇳",
    "    indented line\n\n\ttabbed line\r\nwindows line\n   \n",
    "a photo of an astronaut riding a horse on mars, digital art, octane render",
    "portrait of a woman, oil painting, by rembrandt, dramatic light, masterpiece",
    "USER: Generate a similar image. ASSISTANT: <gen_image> A cozy cabin in the woods. </gen_image>",
] * 3

STRINGS = [
    "",
    " ",
    "  ",
    "\n",
    "Hello world",
    " Hello world",
    "Hello  world",
    "hello\nworld\n\n",
    "   leading and trailing   ",
    "\t\ttabs\tand  spaces \n\r\n mixed",
    "It's OK, I'M fine; THEY'LL come, she'd've, we're, you've, 'S 'LL",
    "ſ 'ſ test ’s curly",
    "Numbers 1 12 123 1234 12345 3.14159 1,000,000 ٣٤٥ ²³ Ⅻ",
    "Café naïve résumé façade jalapeño Zürich",
    "Cafe\u0301 (decomposed e + combining acute) A\u030a",
    "一只在雪地里的红狐狸，细节丰富。",
    "東京の夜景 서울의 밤거리",
    "🦊❄️🌙✨ 👩‍🎨 🇨🇳 🫠",
    "Привет, мир! Γειά σου! مرحبا! שלום! नमस्ते!",
    "def f(x):\n    return x ** 2  # square\n",
    "if (a && b) { return a[i] >= b[j]; } // done",
    "<gen_image> A red fox in snow. </gen_image>",
    "<|im_start|>user\nHi<|im_end|>",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<s>[INST] hi [/INST] ok </s><s>",
    "text </s>USER: next",
    "look <image>\nDescribe the image.",
    "a <mask> b<mask>c  <mask>",
    "Supercalifragilisticexpialidocious" * 8,
    "x" * 300,
    "Control\x00chars\x07and\x1bescape\x0bvt\x0cff\x85nel\u2028ls",
    "Zero\u200bwidth\u00a0nbsp\u3000ideographic",
    "Private\ue000use and unassigned \U0010fffd",
    "▁already▁has▁metaspace ▁ ▁▁",
    "<0x41> <unk> <s> </s> literal",
    "!!!??? ... --- ***",
    "x<|图像|>y<|endoftext|>z <|eot_id|> <image>",
]


def _random_strings(count=40, seed=1234):
    """Seeded random mixes of the character classes the split regexes care about."""
    import random
    rng = random.Random(seed)
    pools = ["abcXYZ", "éßøΩж", "0123456789", "٣Ⅻ²", " ", "  ", "\t", "\n", "\r\n", "\u00a0\u3000",
             "'sS'tT'reRE've'mM'llLL'dD", ".,;:!?-_()[]{}<>/\\\"#$%&*+=@^`|~", "一二三雪狐", "🦊✨👩‍🎨", "’"]
    out = []
    for _ in range(count):
        n = rng.randint(1, 40)
        out.append("".join(rng.choice(rng.choice(pools)) for _ in range(n)))
    return out


STRINGS += _random_strings()

IMAGE_PROMPTS = [
    "<image>\nGenerate a similar image.",
    "USER: <image>\nInpaint this image. ASSISTANT:",
    "before <image> middle <image> after",
    "<image>",
    "no image here",
    "",
]


def tokenizer_image_token(prompt, tokenizer, image_token_index=-200):
    """Copied from LLaVA / LLMGA llava/mm_utils.py."""
    prompt_chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]

    def insert_separator(X, sep):
        return [ele for sublist in zip(X, [sep] * len(X)) for ele in sublist][:-1]

    input_ids = []
    offset = 0
    if len(prompt_chunks) > 0 and len(prompt_chunks[0]) > 0 and prompt_chunks[0][0] == tokenizer.bos_token_id:
        offset = 1
        input_ids.append(prompt_chunks[0][0])
    for x in insert_separator(prompt_chunks, [image_token_index] * (offset + 1)):
        input_ids.extend(x[offset:])
    return input_ids


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1, sort_keys=True)
        f.write("\n")


def fresh_dir(name):
    d = os.path.join(OUT, "tokenizers", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def train_bytelevel(pattern, vocab_size, specials):
    tok = Tokenizer(models.BPE())
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return tok


def bytelevel_cases(folder, extra_added_non_special=()):
    tk = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(folder)
    cases = []
    for s in STRINGS:
        enc = tk.encode(s, add_special_tokens=False).ids
        enc_sp = tk.encode(s, add_special_tokens=True).ids
        tk.encode_special_tokens = True
        enc_nosplit = tk.encode(s, add_special_tokens=False).ids
        tk.encode_special_tokens = False
        auto_ids = auto(s).input_ids
        assert auto_ids == enc_sp, (folder, s, auto_ids, enc_sp)
        cases.append({
            "text": s,
            "ids": enc,
            "ids_with_special": enc_sp,
            "ids_special_as_text": enc_nosplit,
            "decoded": tk.decode(enc_sp, skip_special_tokens=False),
            "decoded_skip_special": tk.decode(enc_sp, skip_special_tokens=True),
            "auto_decoded": auto.decode(enc_sp),
            "tokens": tk.encode(s, add_special_tokens=False).tokens,
        })
    images = [{"prompt": p, "ids": tokenizer_image_token(p, auto)} for p in IMAGE_PROMPTS]
    write_json(os.path.join(folder, "cases.json"), {
        "generator": f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__}",
        "cases": cases, "image_prompts": images,
        "bos_token_id": auto.bos_token_id, "eos_token_id": auto.eos_token_id, "pad_token_id": auto.pad_token_id,
        "vocab_size_with_added": tk.get_vocab_size(with_added_tokens=True),
    })


def make_qwen2():
    d = fresh_dir("qwen2")
    tok = train_bytelevel(QWEN2_PATTERN, 900, [])
    tok.normalizer = normalizers.NFC()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([TkAddedToken(t, special=True, normalized=False) for t in
                            ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]])
    path = os.path.join(d, "tokenizer.json")
    tok.save(path)
    # Qwen2's released file spells merges as "a b" strings: rewrite them in that form.
    j = json.load(open(path, encoding="utf-8"))
    j["model"]["merges"] = [" ".join(m) if isinstance(m, list) else m for m in j["model"]["merges"]]
    assert all(" " not in a and " " not in b for a, b in (m.split(" ") for m in j["model"]["merges"]))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "unk_token": None, "clean_up_tokenization_spaces": False,
        "model_max_length": 32768, "add_prefix_space": False,
        "chat_template": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    })
    bytelevel_cases(d)


def make_llama3():
    d = fresh_dir("llama3")
    tok = train_bytelevel(LLAMA3_PATTERN, 1000, [])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>", "<image>", "<|图像|>"]
    tok.add_special_tokens([TkAddedToken(t, special=True, normalized=False) for t in specials])
    tok.add_tokens([TkAddedToken("<mask>", special=False, normalized=False, lstrip=True)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
                                      special_tokens=[("<|begin_of_text|>", bos)]),
    ])
    path = os.path.join(d, "tokenizer.json")
    tok.save(path)
    j = json.load(open(path, encoding="utf-8"))
    j["model"]["ignore_merges"] = True
    assert isinstance(j["model"]["merges"][0], list)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False)
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
        "clean_up_tokenization_spaces": True, "model_max_length": 8192,
        "chat_template": "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}{% endfor %}",
    })
    bytelevel_cases(d)


def make_gpt2():
    d = fresh_dir("gpt2")
    tok = train_bytelevel(None, 700, [])
    tok.add_special_tokens([TkAddedToken("<|endoftext|>", special=True, normalized=False)])
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "clean_up_tokenization_spaces": False, "add_bos_token": False,
    })
    bytelevel_cases(d)


def train_spm(prefix, user_defined=(), byte_fallback=True, vocab_size=700):
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            for line in CORPUS:
                f.write(line.replace("\n", " ") + "\n")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=os.path.join(tmp, "m"), model_type="bpe", vocab_size=vocab_size,
            character_coverage=0.995, byte_fallback=byte_fallback, split_digits=True, normalization_rule_name="identity",
            add_dummy_prefix=True, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=list(user_defined),
            num_threads=1, seed_sentencepiece_size=100000, shuffle_input_sentence=False,
            minloglevel=2, max_sentencepiece_length=16)
        # The trainer records its (temporary) input and output paths: blank them so reruns are byte-identical.
        from sentencepiece import sentencepiece_model_pb2
        proto = sentencepiece_model_pb2.ModelProto()
        with open(os.path.join(tmp, "m.model"), "rb") as f:
            proto.ParseFromString(f.read())
        del proto.trainer_spec.input[:]
        proto.trainer_spec.model_prefix = ""
        with open(os.path.join(prefix, "tokenizer.model"), "wb") as f:
            f.write(proto.SerializeToString(deterministic=True))


def spm_cases(folder, legacy):
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    slow = AutoTokenizer.from_pretrained(folder, use_fast=False)
    assert isinstance(slow, LlamaTokenizer) and slow.legacy == legacy, (type(slow), slow.legacy)
    cases = []
    for s in STRINGS:
        raw = sp.encode(s)
        ids = slow(s).input_ids
        ids_nospecial = slow(s, add_special_tokens=False).input_ids
        cases.append({
            "text": s,
            "sp_ids": raw,
            "sp_decoded": sp.decode(raw),
            "sp_pieces": sp.encode(s, out_type=str),
            "ids_with_special": ids,
            "ids": ids_nospecial,
            "auto_decoded_skip_special": slow.decode(ids, skip_special_tokens=True),
        })
    images = [{"prompt": p, "ids": tokenizer_image_token(p, slow)} for p in IMAGE_PROMPTS]
    write_json(os.path.join(folder, "cases.json"), {
        "generator": f"sentencepiece {spm.__version__}, transformers {transformers.__version__} (slow LlamaTokenizer, legacy={legacy})",
        "cases": cases, "image_prompts": images,
        "bos_token_id": slow.bos_token_id, "eos_token_id": slow.eos_token_id, "pad_token_id": slow.pad_token_id,
        "unk_token_id": slow.unk_token_id, "vocab_size": sp.get_piece_size(),
    })
    return sp


def make_llama2_spm():
    d = fresh_dir("llama2-spm")
    train_spm(d)
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
        "bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "eos_token": {"__type": "AddedToken", "content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "unk_token": {"__type": "AddedToken", "content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False},
        "pad_token": None, "legacy": True, "clean_up_tokenization_spaces": False, "model_max_length": 4096,
    })
    write_json(os.path.join(d, "special_tokens_map.json"), {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"})
    spm_cases(d, legacy=True)
    return d


def make_mistral_spm():
    d = fresh_dir("mistral-spm")
    train_spm(d, user_defined=["<gen_image>", "</gen_image>"])
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
        "added_tokens_decoder": {
            "0": {"content": "<unk>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            "1": {"content": "<s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
            "2": {"content": "</s>", "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": True},
        },
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
        "legacy": False, "clean_up_tokenization_spaces": False, "model_max_length": 32768,
    })
    spm_cases(d, legacy=False)


def make_nobytes_spm():
    """No byte fallback: unknown characters become <unk> (consecutive ones fused), decoded as " \u2047 "."""
    d = fresh_dir("nobytes-spm")
    train_spm(d, byte_fallback=False, vocab_size=300)
    write_json(os.path.join(d, "tokenizer_config.json"), {
        "tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": True, "legacy": True,
        "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
    })
    spm_cases(d, legacy=True)


def make_llama2_hfjson(spm_dir):
    d = fresh_dir("llama2-hfjson")
    fast = LlamaTokenizerFast.from_pretrained(spm_dir, from_slow=True, legacy=True)
    fast.save_pretrained(d)
    for extra in ("tokenizer.model",):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    slow = AutoTokenizer.from_pretrained(spm_dir, use_fast=False)
    tk = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
    cases = []
    for s in STRINGS:
        enc_sp = tk.encode(s, add_special_tokens=True).ids
        enc = tk.encode(s, add_special_tokens=False).ids
        cases.append({
            "text": s, "ids": enc, "ids_with_special": enc_sp,
            "slow_ids_with_special": slow(s).input_ids,
            "decoded": tk.decode(enc_sp, skip_special_tokens=False),
            "decoded_skip_special": tk.decode(enc_sp, skip_special_tokens=True),
        })
    write_json(os.path.join(d, "cases.json"), {
        "generator": f"tokenizers {tokenizers.__version__}, transformers {transformers.__version__} (LlamaTokenizerFast from_slow, legacy=True)",
        "cases": cases, "image_prompts": [],
        "bos_token_id": fast.bos_token_id, "eos_token_id": fast.eos_token_id, "pad_token_id": fast.pad_token_id,
    })
    for name in os.listdir(d):
        if name not in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "cases.json"):
            os.remove(os.path.join(d, name))


# ---------------------------------------------------------------- chat templates (LLMGA's llmga/llava/conversation.py)

REFERENCE = {
    "llava_v1": "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions. USER: <image>\nGenerate a similar image. ASSISTANT: <gen_image> A red fox in snow. </gen_image></s>USER: Make it night. ASSISTANT:",
    "llava_llama_2": "[INST] <<SYS>>\nYou are LLMGA, a useful language and vision generation assistant. You can generate images according to the user's requirements. If the user wants you to inpaint or outpaint images, please imagine what is in the black mask parts of the image. If image generation is required, please provide a detailed description of the generated images in the form of <gen_image> DETAILED DESCRIPTION </gen_image>.\n<</SYS>>\n\n<image>\nGenerate a similar image. [/INST] <gen_image> A red fox in snow. </gen_image> </s><s>[INST] Make it night. [/INST]",
    "mistral_instruct": "[INST] <<SYS>>\n\n<</SYS>>\n\n<image>\nGenerate a similar image. [/INST] <gen_image> A red fox in snow. </gen_image> </s><s>[INST] Make it night. [/INST]",
    "llama_3": "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n<image>\nGenerate a similar image.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\n<gen_image> A red fox in snow. </gen_image><|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMake it night.<|eot_id|><|start_header_id|>system<|end_header_id|>\n\n",
    "qwen_2": "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers.<|im_end|><|im_start|>user\n<image>\nGenerate a similar image.<|im_end|><|im_start|>assistant\n<gen_image> A red fox in snow. </gen_image><|im_end|><|im_start|>user\nMake it night.<|im_end|><|im_start|>assistant\n",
    "gemma": "<start_of_turn>user\n<image>\nGenerate a similar image.<end_of_turn>\n<start_of_turn>model\n<gen_image> A red fox in snow. </gen_image><end_of_turn>\n<eos><start_of_turn>user\nMake it night.<end_of_turn>\n<start_of_turn>model\n",
    "phi_3": "<|user|>\n<image>\nGenerate a similar image.<|end|>\n<|assistant|>\n<gen_image> A red fox in snow. </gen_image><|end|>\n<|user|>\nMake it night.<|end|>\n<|assistant|>\n",
}

# Default system prompts (conversation.py, as quoted in §1.3).
SYSTEMS = {
    "llava_v1": "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.",
    "llava_llama_2": "You are LLMGA, a useful language and vision generation assistant. You can generate images according to the user's requirements. If the user wants you to inpaint or outpaint images, please imagine what is in the black mask parts of the image. If image generation is required, please provide a detailed description of the generated images in the form of <gen_image> DETAILED DESCRIPTION </gen_image>.",
    "mistral_instruct": "",
    "llama_3": "You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.",
    "qwen_2": "A conversation between a user and an LLM-based AI assistant. The assistant gives helpful and honest answers.",
    "gemma": "",
    "phi_3": "",
}

# Jinja renderings of conversation.py's separator styles. `messages` is user/assistant alternating, starting
# with the user; a system message, if first, replaces the default. add_generation_prompt appends the open
# assistant turn (conversation.py's trailing (role, None) message).
_SYS = "{%- if messages[0]['role'] == 'system' %}{%- set sys = messages[0]['content'] %}{%- set msgs = messages[1:] %}{%- else %}{%- set sys = default_system %}{%- set msgs = messages %}{%- endif %}"
JINJA = {
    # SeparatorStyle.TWO: system + sep, then role + ": " + message + seps[i % 2]; open turn: role + ":"
    "llava_v1": _SYS + "{{ sys + ' ' }}{%- for m in msgs %}{%- if m['role'] == 'user' %}{{ 'USER: ' + m['content'] + ' ' }}{%- else %}{{ 'ASSISTANT: ' + m['content'] + '</s>' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ 'ASSISTANT:' }}{%- endif %}",
    # SeparatorStyle.LLAMA_2 (LLMGA: the <<SYS>> block is always emitted); the result is lstrip'ed of "<s>"
    "llava_llama_2": _SYS + "{%- for m in msgs %}{%- if m['role'] == 'user' %}{{ ('' if loop.first else '<s>') + '[INST] ' + ('<<SYS>>\n' + sys + '\n<</SYS>>\n\n' if loop.first else '') + m['content'] + ' [/INST]' }}{%- else %}{{ ' ' + m['content'] + ' </s>' }}{%- endif %}{%- endfor %}",
    # SeparatorStyle.LLAMA_3 (LLMGA): assistant header is literally "system"
    "llama_3": _SYS + "{{ '<|start_header_id|>system<|end_header_id|>\n\n' + sys + '<|eot_id|>' }}{%- for m in msgs %}{{ '<|start_header_id|>' + ('user' if m['role'] == 'user' else 'system') + '<|end_header_id|>\n\n' + m['content'] + '<|eot_id|>' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|start_header_id|>system<|end_header_id|>\n\n' }}{%- endif %}",
    # SeparatorStyle.MPT with chatml roles, no newline after <|im_end|>
    "qwen_2": _SYS + "{{ '<|im_start|>system\n' + sys + '<|im_end|>' }}{%- for m in msgs %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>' }}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{%- endif %}",
    "gemma": "{%- for m in messages %}{%- if m['role'] == 'user' %}{{ '<start_of_turn>user\n' + m['content'] + '<end_of_turn>\n' }}{%- else %}{{ '<start_of_turn>model\n' + m['content'] + '<end_of_turn>\n<eos>' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{%- endif %}",
    "phi_3": "{%- for m in messages %}{%- if m['role'] == 'user' %}{{ '<|user|>\n' + m['content'] + '<|end|>\n' }}{%- else %}{{ '<|assistant|>\n' + m['content'] + '<|end|>\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ '<|assistant|>\n' }}{%- endif %}",
}
JINJA["mistral_instruct"] = JINJA["llava_llama_2"]

CONVERSATIONS = [
    {"name": "reference_two_turns", "system": None, "messages": [
        {"role": "user", "content": "Generate a similar image.", "image": True},
        {"role": "assistant", "content": "<gen_image> A red fox in snow. </gen_image>"},
        {"role": "user", "content": "Make it night."}]},
    {"name": "one_turn_text", "system": None, "messages": [
        {"role": "user", "content": "a cat on a sofa Generate this image based on given keywords."}]},
    {"name": "one_turn_image", "system": None, "messages": [
        {"role": "user", "content": "Inpaint this image.", "image": True}]},
    {"name": "three_turns", "system": None, "messages": [
        {"role": "user", "content": "Please help me design a spaceship and show me its blueprint."},
        {"role": "assistant", "content": "Sure! <gen_image> A sleek silver spaceship blueprint. </gen_image>"},
        {"role": "user", "content": "Add wings."},
        {"role": "assistant", "content": "<gen_image> A sleek silver spaceship with wings. </gen_image>"},
        {"role": "user", "content": "Now in 中文 style 🎨.\nThanks"}]},
    {"name": "custom_system", "system": "You draw.", "messages": [
        {"role": "user", "content": "Describe the image.", "image": True},
        {"role": "assistant", "content": "A dog."},
        {"role": "user", "content": "Make it a cat"}]},
]


def make_chat():
    import jinja2
    d = os.path.join(OUT, "chat")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    # A tokenizer object only to call apply_chat_template (its vocabulary is irrelevant to rendering).
    host = PreTrainedTokenizerFast(tokenizer_file=os.path.join(OUT, "tokenizers", "qwen2", "tokenizer.json"))
    rendered = {}
    for family, template in JINJA.items():
        rendered[family] = {}
        for conv in CONVERSATIONS:
            if conv["system"] is not None and family in ("gemma", "phi_3"):
                continue  # these templates have no system slot
            msgs = []
            if conv["system"] is not None:
                msgs.append({"role": "system", "content": conv["system"]})
            for m in conv["messages"]:
                content = ("<image>\n" + m["content"]) if m.get("image") else m["content"]
                msgs.append({"role": m["role"], "content": content})
            text = host.apply_chat_template(msgs, chat_template=template, tokenize=False, add_generation_prompt=True,
                                            default_system=SYSTEMS[family])
            rendered[family][conv["name"]] = text
        assert rendered[family]["reference_two_turns"] == REFERENCE[family], (family, rendered[family]["reference_two_turns"])
    write_json(os.path.join(d, "templates.json"), {
        "generator": f"jinja2 {jinja2.__version__}, transformers {transformers.__version__} apply_chat_template",
        "reference": REFERENCE, "default_systems": SYSTEMS, "jinja": JINJA,
        "conversations": CONVERSATIONS, "rendered": rendered,
    })


def main():
    os.makedirs(OUT, exist_ok=True)
    make_qwen2()
    make_llama3()
    make_gpt2()
    spm_dir = make_llama2_spm()
    make_mistral_spm()
    make_nobytes_spm()
    make_llama2_hfjson(spm_dir)
    make_chat()
    total = 0
    for dirpath, _, files in os.walk(OUT):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    print(f"fixtures written under {OUT}: {total / 1024:.0f} KiB")


if __name__ == "__main__":
    sys.exit(main())
