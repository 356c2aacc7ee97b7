#!/usr/bin/env bash
# Builds tools/tensor/bench.swift together with Sources/Tensor (release, one module) and runs it.
# Usage: tools/tensor/bench.sh    (from anywhere; output binary in .build-bench/)
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .build-bench
swiftc -O -parse-as-library -module-name TensorBench \
    -I Sources/CBLAS $(pkg-config --cflags openblas | sed 's/-I/-Xcc -I/g') \
    $(pkg-config --libs openblas) \
    Sources/Tensor/*.swift tools/tensor/bench.swift -o .build-bench/tensor-bench
OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}" .build-bench/tensor-bench
