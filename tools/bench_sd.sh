#!/usr/bin/env bash
# Stable Diffusion 1.5 speed against diffusers, measured in one run on this machine (a benchmark,
# not a test). Full-size SD1.5 UNet and VAE with random weights (llmga: f16 weights; diffusers:
# fp32, its default on CPU), 512x512, one CFG step = one UNet call on a batch of 2.
#
#   tools/bench_sd.sh            # BENCH_RUNS=3 by default; medians are reported
#
# Needs tools/.venv with torch and diffusers (see tools/diffusion/README.md). Run on a quiet machine:
# the ratio is only meaningful when both sides see the same load.
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${BENCH_RUNS:-3}"
echo "== llmga (tools/diffusion/bench.sh)"
ours=$(BENCH_RUNS="$runs" BENCH_SWIFTFLAGS="${BENCH_SWIFTFLAGS:--target-cpu haswell}" tools/diffusion/bench.sh | tee >(cat >&2))
echo "== diffusers (tools/diffusion/bench_diffusers.py)"
ref=$(OMP_NUM_THREADS=2 tools/.venv/bin/python tools/diffusion/bench_diffusers.py --repeats "$runs" | tee >(cat >&2))
unet=$(echo "$ours" | sed -n 's/^UNet CFG step (batch 2): median \([0-9.]*\) s.*/\1/p')
vae=$(echo "$ours" | sed -n 's/^VAE decode 512²: median \([0-9.]*\) s.*/\1/p')
python3 - "$unet" "$vae" "$ref" <<'PY'
import json, sys
unet, vae, ref = float(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
print(f"UNet CFG step: llmga {unet:.2f} s, diffusers {ref['unet_cfg_step_s']:.2f} s, ratio {unet / ref['unet_cfg_step_s']:.2f} (<= 1.0 means llmga is as fast or faster)")
print(f"VAE decode 512²: llmga {vae:.2f} s, diffusers {ref['vae_decode_s']:.2f} s, ratio {vae / ref['vae_decode_s']:.2f}")
print(f"diffusers peak RSS {ref['peak_rss_bytes'] / 2**30:.2f} GiB")
PY
