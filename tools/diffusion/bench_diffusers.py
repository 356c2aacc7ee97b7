"""Reference timings for llmga's SD benchmark: diffusers fp32 on torch CPU, same machine, same run.

Builds a full-size SD1.5 UNet2DConditionModel and AutoencoderKL from their configs with random
weights (timing does not depend on weight values; nothing is downloaded), then measures:
  - seconds per CFG step: one UNet call on a batch of 2 latents [2,4,64,64] with a [2,77,768] context
  - seconds per VAE decode of one [1,4,64,64] latent to 512x512
  - peak RSS of the process
Prints one JSON object. Usage (from the repository root):

    OMP_NUM_THREADS=2 tools/.venv/bin/python tools/diffusion/bench_diffusers.py --repeats 3

Medians are reported; the first call of each kind is a warm-up and is not counted.
"""
import argparse
import json
import resource
import statistics
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

UNET = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
)


def timed(fn, repeats):
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with torch.no_grad():
        unet = UNet2DConditionModel(**UNET).eval()
        vae = AutoencoderKL(**VAE).eval()
        latents = torch.randn(2, 4, 64, 64)
        context = torch.randn(2, 77, 768)
        t = torch.tensor([500.0, 500.0])
        unet_s, unet_all = timed(lambda: unet(latents, t, encoder_hidden_states=context).sample, args.repeats)
        z = torch.randn(1, 4, 64, 64)
        vae_s, vae_all = timed(lambda: vae.decode(z).sample, args.repeats)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "system": f"diffusers fp32, torch {torch.__version__}, {args.threads} threads",
        "unet_cfg_step_s": round(unet_s, 3), "unet_cfg_step_all_s": [round(x, 3) for x in unet_all],
        "vae_decode_s": round(vae_s, 3), "vae_decode_all_s": [round(x, 3) for x in vae_all],
        "peak_rss_bytes": rss,
    }))


if __name__ == "__main__":
    main()
