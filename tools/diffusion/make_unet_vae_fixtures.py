#!/usr/bin/env python3
"""Parity fixtures for the Swift UNet2DConditionModel and AutoencoderKL (Tests/DiffusionTests/Fixtures/{unet,vae}).

Run with the reference venv (diffusers 0.42.1, torch CPU):
    /work/main/tools/.venv/bin/python tools/diffusion/make_unet_vae_fixtures.py

Deterministic: every random tensor comes from torch.Generator seeds fixed below; all computation is float32 on the
CPU with 1 thread. Re-running rewrites byte-identical files (safetensors with sorted keys).

Written:
  unet/config.json, unet/unet_f32.safetensors, unet/unet_f16.safetensors   tiny UNet (every block type: a cross-attention
      down block, a plain down block, the cross-attention mid block, a plain up block, a cross-attention up block),
      weights in diffusers layout, F32 and an F16 copy.
  unet/cases.safetensors  inputs and torch outputs:
      a.*   batch 2 (CFG-like), two different float timesteps, 16x12 latent, 7 context tokens     (F32 weights)
      cn.*  as a plus ControlNet-style residuals (down.0..N, mid)                                  (F32 weights)
      odd.* batch 1, 9x7 latent (Upsample to the skip's size), one timestep                          (F32 weights)
      p2p.* as a, with every cross-attention's probabilities of batch row 1 replaced by row 0's         (F32 weights)
      probe.* attention probabilities [B*H, Nq, Nk] of the mid block's attn1 and up_blocks.1.attentions.2 attn2 (case a)
      f16.* case a inputs, output of torch in f32 with the F16-rounded weights
  unet/nine/config.json, unet/nine/unet9_f16.safetensors, unet9 cases in cases.safetensors (nine.*): 9 input channels plus other
      config knobs (use_linear_projection, transformer_layers_per_block 2, per-block head counts, freq_shift 1,
      flip_sin_to_cos false); F16 weights, torch output in f32 with the F16-rounded weights.
  vae/config.json, vae/vae_f32.safetensors, vae/vae_f16.safetensors, vae/cases.safetensors:
      enc.image [1,3,32,24] -> enc.moments (quant_conv output), enc.sample (latent_dist.sample(Generator seed 1234))
      dec.latent [2,4,8,6] -> dec.image (decode, no scaling: the pipeline divides by scaling_factor first)
      f16.enc.moments, f16.dec.image: same with the F16-rounded weights
  unet/ldm/tiny_sd.safetensors: the F16 UNet + F16 VAE + a tiny F16 CLIP text encoder in single-file LDM layout
      (model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*), written by inverting diffusers'
      LDM->diffusers conversion; this script checks that diffusers' convert_ldm_unet_checkpoint /
      convert_ldm_vae_checkpoint map it back to exactly the diffusers state dicts.
"""
import json, os, sys
import torch
from safetensors.torch import save_file
from diffusers import UNet2DConditionModel, AutoencoderKL
from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint, convert_ldm_vae_checkpoint
from diffusers.models.attention_processor import AttnProcessor
from transformers import CLIPTextConfig, CLIPTextModel

torch.set_num_threads(1)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "DiffusionTests", "Fixtures")

UNET_CONFIG = dict(sample_size=16, in_channels=4, out_channels=4, block_out_channels=[16, 32], layers_per_block=2,
                   down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
                   mid_block_type="UNetMidBlock2DCrossAttn",
                   up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                   cross_attention_dim=16, attention_head_dim=2, norm_num_groups=8, norm_eps=1e-5,
                   flip_sin_to_cos=True, freq_shift=0, use_linear_projection=False)
UNET9_CONFIG = dict(UNET_CONFIG, in_channels=9, use_linear_projection=True, transformer_layers_per_block=2,
                    attention_head_dim=[2, 4], freq_shift=1, flip_sin_to_cos=False, layers_per_block=1)
VAE_CONFIG = dict(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=[8, 16, 16], layers_per_block=2,
                  down_block_types=["DownEncoderBlock2D"] * 3, up_block_types=["UpDecoderBlock2D"] * 3,
                  norm_num_groups=4, sample_size=32, scaling_factor=0.18215)
CLIP_CONFIG = dict(vocab_size=100, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                   max_position_embeddings=77, hidden_act="quick_gelu", layer_norm_eps=1e-5,
                   bos_token_id=0, eos_token_id=2, pad_token_id=1)


def randomize(model, seed):
    """Non-trivial weights: N(0, 1/fan_in) for matrices/kernels, 1 + 0.1 N for norm scales, 0.1 N for biases."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            r = torch.randn(p.shape, generator=g)
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(r / fan_in ** 0.5)
            elif "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * r)
            else:
                p.copy_(0.1 * r)
    return model


def f16_rounded(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def state(model, dtype):
    return {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}


def save(tensors, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_file({k: tensors[k].contiguous() for k in sorted(tensors)}, path)


def write_config(cfg, cls, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(dict(cfg, _class_name=cls), f, indent=1, sort_keys=True)
        f.write("\n")


class RecordingProcessor(AttnProcessor):
    """diffusers' AttnProcessor with a hook on the probabilities (the prompt-to-prompt interception point)."""

    def __init__(self, name, log, edit_cross):
        self.name, self.log, self.edit_cross = name, log, edit_cross

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kw):
        is_cross = encoder_hidden_states is not None
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        ctx = encoder_hidden_states if is_cross else hidden_states
        key = attn.head_to_batch_dim(attn.to_k(ctx))
        value = attn.head_to_batch_dim(attn.to_v(ctx))
        probs = attn.get_attention_scores(query, key, None)
        if self.log is not None:
            self.log[self.name] = probs.clone()
        if self.edit_cross and is_cross:
            half = probs.shape[0] // 2
            probs = torch.cat([probs[:half], probs[:half]], dim=0)
        out = attn.batch_to_head_dim(torch.bmm(probs, value))
        return attn.to_out[1](attn.to_out[0](out))


def set_processors(unet, log=None, edit_cross=False):
    procs = {name: RecordingProcessor(name, log, edit_cross) for name in unet.attn_processors}
    unet.set_attn_processor(procs)


def residual_shapes(unet, sample):
    """Shapes of the skip connections (down_block_res_samples) and of the mid-block output."""
    shapes = []
    hooks = []
    def grab(m, i, o):
        o = o[0] if isinstance(o, tuple) else getattr(o, "sample", o)
        shapes.append(o.shape)
    hooks.append(unet.conv_in.register_forward_hook(grab))
    for blk in unet.down_blocks:
        for r, a in zip(blk.resnets, blk.attentions if hasattr(blk, "attentions") else [None] * len(blk.resnets)):
            hooks.append((a if a is not None else r).register_forward_hook(grab))
        if blk.downsamplers is not None:
            hooks.append(blk.downsamplers[0].register_forward_hook(grab))
    mid = []
    hooks.append(unet.mid_block.register_forward_hook(lambda m, i, o: mid.append(o.shape)))
    return shapes, mid, hooks


def unet_fixtures(cases):
    torch.manual_seed(0)
    unet = randomize(UNet2DConditionModel(**UNET_CONFIG), 1).eval()
    write_config(UNET_CONFIG, "UNet2DConditionModel", f"{ROOT}/unet/config.json")
    save(state(unet, torch.float32), f"{ROOT}/unet/unet_f32.safetensors")
    save(state(unet, torch.float16), f"{ROOT}/unet/unet_f16.safetensors")

    g = torch.Generator().manual_seed(10)
    sample = torch.randn(2, 4, 16, 12, generator=g)
    t = torch.tensor([999.0, 37.5])
    ctx = torch.randn(2, 7, 16, generator=g)
    with torch.no_grad():
        set_processors(unet)
        out = unet(sample, t, ctx).sample
        cases.update({"a.sample": sample, "a.timesteps": t, "a.context": ctx, "a.out": out})

        shapes, mid, hooks = residual_shapes(unet, sample)
        unet(sample, t, ctx)
        for h in hooks:
            h.remove()
        down = [0.5 * torch.randn(s, generator=g) for s in shapes]
        midr = 0.5 * torch.randn(mid[0], generator=g)
        out_cn = unet(sample, t, ctx, down_block_additional_residuals=tuple(down),
                      mid_block_additional_residual=midr).sample
        cases.update({f"cn.down.{i}": d for i, d in enumerate(down)})
        cases.update({"cn.mid": midr, "cn.out": out_cn})

        odd = torch.randn(1, 4, 9, 7, generator=g)
        todd = torch.tensor([500.0])
        ctx1 = torch.randn(1, 5, 16, generator=g)
        cases.update({"odd.sample": odd, "odd.timesteps": todd, "odd.context": ctx1,
                      "odd.out": unet(odd, todd, ctx1).sample})

        log = {}
        set_processors(unet, log=log)
        unet(sample, t, ctx)
        cases["probe.mid.attn1"] = log["mid_block.attentions.0.transformer_blocks.0.attn1.processor"]
        cases["probe.up1.a2.attn2"] = log["up_blocks.1.attentions.2.transformer_blocks.0.attn2.processor"]
        set_processors(unet, edit_cross=True)
        cases["p2p.out"] = unet(sample, t, ctx).sample
        set_processors(unet)

        u16 = f16_rounded(unet)
        cases["f16.out"] = u16(sample, t, ctx).sample

    # 9-channel variant with other config knobs.
    unet9 = f16_rounded(randomize(UNet2DConditionModel(**UNET9_CONFIG), 2).eval())
    write_config(UNET9_CONFIG, "UNet2DConditionModel", f"{ROOT}/unet/nine/config.json")
    save(state(unet9, torch.float16), f"{ROOT}/unet/nine/unet9_f16.safetensors")
    s9 = torch.randn(2, 9, 8, 10, generator=g)
    t9 = torch.tensor([1.0, 640.25])
    c9 = torch.randn(2, 3, 16, generator=g)
    with torch.no_grad():
        cases.update({"nine.sample": s9, "nine.timesteps": t9, "nine.context": c9, "nine.out": unet9(s9, t9, c9).sample})
    return unet


def vae_fixtures():
    vae = randomize(AutoencoderKL(**VAE_CONFIG), 3).eval()
    write_config(VAE_CONFIG, "AutoencoderKL", f"{ROOT}/vae/config.json")
    save(state(vae, torch.float32), f"{ROOT}/vae/vae_f32.safetensors")
    save(state(vae, torch.float16), f"{ROOT}/vae/vae_f16.safetensors")
    g = torch.Generator().manual_seed(20)
    image = torch.rand(1, 3, 32, 24, generator=g) * 2 - 1
    latent = torch.randn(2, 4, 8, 6, generator=g)
    cases = {"enc.image": image, "dec.latent": latent}
    with torch.no_grad():
        h = vae.encoder(image)
        moments = vae.quant_conv(h)
        dist = vae.encode(image).latent_dist
        assert torch.equal(dist.parameters, moments)
        cases["enc.moments"] = moments
        cases["enc.sample"] = dist.sample(generator=torch.Generator().manual_seed(1234))
        cases["dec.image"] = vae.decode(latent).sample
        v16 = f16_rounded(vae)
        cases["f16.enc.moments"] = v16.quant_conv(v16.encoder(image))
        cases["f16.dec.image"] = v16.decode(latent).sample
    save(cases, f"{ROOT}/vae/cases.safetensors")
    return vae


# ---- diffusers -> LDM (inverse of convert_ldm_unet_checkpoint / convert_ldm_vae_checkpoint) ----

def unet_to_ldm(sd, cfg):
    L = cfg["layers_per_block"]
    res = [("norm1.", "in_layers.0."), ("conv1.", "in_layers.2."), ("time_emb_proj.", "emb_layers.1."),
           ("norm2.", "out_layers.0."), ("conv2.", "out_layers.3."), ("conv_shortcut.", "skip_connection.")]
    def resnet(rest):
        for a, b in res:
            if rest.startswith(a):
                return b + rest[len(a):]
        raise KeyError(rest)
    up_has_attn = ["CrossAttn" in t for t in cfg["up_block_types"]]
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "time_embedding":
            n = {"linear_1": "time_embed.0", "linear_2": "time_embed.2"}[p[1]] + "." + ".".join(p[2:])
        elif p[0] == "conv_in":
            n = "input_blocks.0.0." + ".".join(p[1:])
        elif p[0] == "conv_norm_out":
            n = "out.0." + ".".join(p[1:])
        elif p[0] == "conv_out":
            n = "out.2." + ".".join(p[1:])
        elif p[0] == "down_blocks":
            i = int(p[1])
            if p[2] == "resnets":
                n = f"input_blocks.{3 * 0 + i * (L + 1) + int(p[3]) + 1}.0." + resnet(".".join(p[4:]))
            elif p[2] == "attentions":
                n = f"input_blocks.{i * (L + 1) + int(p[3]) + 1}.1." + ".".join(p[4:])
            else:  # downsamplers.0.conv
                n = f"input_blocks.{(i + 1) * (L + 1)}.0.op." + ".".join(p[5:])
        elif p[0] == "mid_block":
            if p[1] == "resnets":
                n = f"middle_block.{2 * int(p[2])}." + resnet(".".join(p[3:]))
            else:
                n = "middle_block.1." + ".".join(p[3:])
        elif p[0] == "up_blocks":
            i = int(p[1])
            if p[2] == "resnets":
                n = f"output_blocks.{i * (L + 1) + int(p[3])}.0." + resnet(".".join(p[4:]))
            elif p[2] == "attentions":
                n = f"output_blocks.{i * (L + 1) + int(p[3])}.1." + ".".join(p[4:])
            else:  # upsamplers.0.conv
                n = f"output_blocks.{i * (L + 1) + L}.{2 if up_has_attn[i] else 1}.conv." + ".".join(p[5:])
        else:
            raise KeyError(k)
        out["model.diffusion_model." + n] = v
    return out


def vae_to_ldm(sd, cfg):
    levels = len(cfg["block_out_channels"])
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        side = p[0]
        if p[0] in ("quant_conv", "post_quant_conv"):
            n = k
        elif p[1] in ("conv_in", "conv_out"):
            n = k
        elif p[1] == "conv_norm_out":
            n = f"{side}.norm_out." + ".".join(p[2:])
        elif p[1] in ("down_blocks", "up_blocks"):
            i = int(p[2])
            lvl = i if side == "encoder" else levels - 1 - i
            kind = "down" if side == "encoder" else "up"
            if p[3] == "resnets":
                rest = ".".join(p[5:]).replace("conv_shortcut.", "nin_shortcut.")
                n = f"{side}.{kind}.{lvl}.block.{p[4]}.{rest}"
            else:
                n = f"{side}.{kind}.{lvl}.{'downsample' if side == 'encoder' else 'upsample'}.conv." + ".".join(p[6:])
        elif p[1] == "mid_block":
            if p[2] == "resnets":
                rest = ".".join(p[4:]).replace("conv_shortcut.", "nin_shortcut.")
                n = f"{side}.mid.block_{int(p[3]) + 1}.{rest}"
            else:
                name = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}[p[4]]
                tail = p[-1]
                n = f"{side}.mid.attn_1.{name}.{tail}"
                if name != "norm" and tail == "weight":
                    v = v[:, :, None, None]
        else:
            raise KeyError(k)
        out["first_stage_model." + n] = v
    return out


def ldm_fixture(unet, vae):
    unet16 = state(unet, torch.float16)
    vae16 = state(vae, torch.float16)
    torch.manual_seed(4)
    clip = randomize(CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG)), 5).eval()
    clip16 = state(clip, torch.float16)
    ckpt = {}
    ckpt.update(unet_to_ldm(unet16, UNET_CONFIG))
    ckpt.update(vae_to_ldm(vae16, VAE_CONFIG))
    for k, v in clip16.items():
        if k.endswith("position_ids"):
            continue
        ckpt["cond_stage_model.transformer." + k] = v
    ckpt["alphas_cumprod"] = torch.linspace(0.99, 0.01, 10)  # a DDPM buffer the loader must ignore

    # Verify with diffusers' own LDM -> diffusers conversion.
    back_u = convert_ldm_unet_checkpoint(dict(ckpt), dict(UNET_CONFIG))
    assert set(back_u) == set(unet16), sorted(set(back_u) ^ set(unet16))
    for k in unet16:
        assert torch.equal(back_u[k], unet16[k]), k
    back_v = convert_ldm_vae_checkpoint(dict(ckpt), dict(VAE_CONFIG))
    assert set(back_v) == set(vae16), sorted(set(back_v) ^ set(vae16))
    for k in vae16:
        assert back_v[k].shape == vae16[k].shape and torch.equal(back_v[k], vae16[k]), k
    save(ckpt, f"{ROOT}/unet/ldm/tiny_sd.safetensors")
    print("LDM round trip through diffusers' converters: exact,", len(ckpt), "tensors")


def main():
    cases = {}
    unet = unet_fixtures(cases)
    save(cases, f"{ROOT}/unet/cases.safetensors")
    vae = vae_fixtures()
    # the F16 models are rounded in place above; rebuild the unrounded ones for the LDM export (F16 anyway)
    ldm_fixture(unet, vae)
    total = 0
    for d in ("unet", "unet/nine", "unet/ldm", "vae"):
        for f in sorted(os.listdir(f"{ROOT}/{d}")):
            if os.path.isdir(f"{ROOT}/{d}/{f}"):
                continue
            s = os.path.getsize(f"{ROOT}/{d}/{f}")
            total += s
            print(f"{d}/{f}: {s} bytes")
    print("total", total, "bytes")


if __name__ == "__main__":
    main()
