#!/usr/bin/env bash
# LLM decoder benchmark: llmga vs transformers on torch CPU, same machine, same run.
# Makes random-weight bf16 models once (tools/prompter/bench_transformers.py make: Qwen2-0.5B shapes, and a
# Llama-7B layer stack cut to 4 layers) under $BENCH_DIR (default .build-bench/prompter/models), links
# tools/prompter/bench.swift against the SwiftPM release build of Prompter/Tensor/Imaging, then times
# prefill (PROMPT=128 tokens) and decode (DECODE=64 greedy steps with the KV cache), medians of RUNS=3 runs,
# for llmga (f32 math on the stored bf16 weights) and transformers (fp32 and bf16), 2 threads each.
# Prints the JSON lines and a table of ratios (llmga tokens/s ÷ transformers tokens/s).
# Usage: tools/prompter/bench.sh   (PYTHON=/work/main/tools/.venv/bin/python by default)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-/work/main/tools/.venv/bin/python}
dir=${BENCH_DIR:-.build-bench/prompter/models}
out=.build-bench/prompter
mkdir -p "$dir"
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}" OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2
"$py" tools/prompter/bench_transformers.py make "$dir"
# The same flags as the test build, so that an existing `swift build -c release -Xswiftc -enable-testing` is reused.
swift build -c release -Xswiftc -enable-testing --target Prompter >/dev/null
rel=.build/release
swiftc -O -parse-as-library -target-cpu haswell -I "$rel/Modules" -I Sources/CBLAS -Xcc -fmodule-map-file="$rel/CImageCodecs.build/module.modulemap" -Xcc -I/usr/include/libpng16 \
    tools/prompter/bench.swift "$rel"/Prompter.build/*.o "$rel"/Tensor.build/*.o "$rel"/Imaging.build/*.o \
    "$rel"/CImageCodecs.build/*.o $(pkg-config --libs openblas) -lpng16 -ltiff -o "$out/llm-bench"
results="$out/results.jsonl"
: > "$results"
"$out/llm-bench" "$dir/qwen2-0.5b" "$dir/llama7b-4l" | tee -a "$results"
"$py" tools/prompter/bench_transformers.py time "$dir" | tee -a "$results"
"$py" - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"\n{'model':<12} {'impl':<26} {'prefill tok/s':>13} {'decode tok/s':>12} {'prefill ×':>10} {'decode ×':>9}")
for model in dict.fromkeys(r["model"] for r in rows):
    ours = next(r for r in rows if r["model"] == model and r["impl"].startswith("llmga"))
    for r in (x for x in rows if x["model"] == model):
        print(f"{model:<12} {r['impl']:<26} {r['prefill_tok_s']:>13.1f} {r['decode_tok_s']:>12.2f}"
              f" {ours['prefill_tok_s'] / r['prefill_tok_s']:>10.2f} {ours['decode_tok_s'] / r['decode_tok_s']:>9.2f}")
print("(× = llmga tokens/s ÷ that row's tokens/s; >1 means llmga is faster)")
PY
