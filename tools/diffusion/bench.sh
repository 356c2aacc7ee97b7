#!/usr/bin/env bash
# Builds tools/diffusion/bench.swift with Sources/Diffusion (one module, release, the same -O as
# `swift build -c release`) against Sources/Tensor, and runs it: a full-size SD1.5 UNet call
# (batch 2, 64×64 latents, 77 tokens) and a VAE decode at 512², random F16 weights made in-process.
# (BundledCLIPVocabulary.swift needs SwiftPM's Bundle.module and is left out; the benchmark does not use it.)
# Usage: tools/diffusion/bench.sh          (BENCH_RUNS=3, BENCH_SKIP_UNET=1, BENCH_SKIP_VAE=1, BENCH_PROFILE=1,
#        BENCH_ATTN=1: attention only, BENCH_PIPELINE=1: one whole 512² text-to-image run (CLIP, BENCH_STEPS
#        CFG steps, VAE decode) with F16 weights, reporting its peak RSS;
#        extra compiler flags in BENCH_SWIFTFLAGS, e.g. "-target-cpu haswell")
set -euo pipefail
cd "$(dirname "$0")/../.."
out=.build-bench/diffusion
mkdir -p "$out"
blas_inc=$(pkg-config --cflags openblas | sed 's/-I/-Xcc -I/g')
# CKernels (C, per-function target variants chosen at run time): compiled as SwiftPM does, with -O3.
ck="$out/ckernels"
mkdir -p "$ck"
for f in Sources/CKernels/*.c; do clang -O3 -fPIC -I Sources/CKernels/include -c "$f" -o "$ck/$(basename "$f" .c).o"; done
rm -f "$out/libCKernels.a"
ar rcs "$out/libCKernels.a" "$ck"/*.o
# shellcheck disable=SC2086
swiftc -O -parse-as-library -module-name Tensor -emit-module -emit-module-path "$out/Tensor.swiftmodule" \
    -emit-library -static -o "$out/libTensor.a" -I Sources/CBLAS $blas_inc ${BENCH_SWIFTFLAGS:-} Sources/Tensor/*.swift
# shellcheck disable=SC2086
swiftc -O -parse-as-library -module-name DiffusionBench -I "$out" -I Sources/CBLAS -I Sources/CKernels/include $blas_inc ${BENCH_SWIFTFLAGS:-} \
    $(find Sources/Diffusion -name '*.swift' ! -name BundledCLIPVocabulary.swift | sort) tools/diffusion/bench.swift \
    -L "$out" -lTensor -lCKernels $(pkg-config --libs openblas) -o "$out/diffusion-bench"
OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}" "$out/diffusion-bench"
