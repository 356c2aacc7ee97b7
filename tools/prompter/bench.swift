// Benchmark (not a test) of llmga's LLM decoder, built by tools/prompter/bench.sh against the release build.
// For each model folder given: prefill of a PROMPT-token prompt (one batch through the KV cache) and DECODE
// single-token greedy steps, medians of RUNS runs after one warm-up. Prints one JSON object per line.
import Foundation
import Prompter
import Tensor

@main
struct LLMBench {
    static func main() throws {
        let env = ProcessInfo.processInfo.environment
        let promptLen = Int(env["PROMPT"] ?? "") ?? 128
        let decode = Int(env["DECODE"] ?? "") ?? 64
        let runs = Int(env["RUNS"] ?? "") ?? 3
        GEMM.threadCount = Parallel.workerCount
        for folder in CommandLine.arguments.dropFirst() {
            let model = try CausalLM.load(folder: folder)
            var rng = SplitMix64(seed: 0)
            let ids = (0..<promptLen).map { _ in Int(rng.next() % UInt64(model.config.vocabSize)) }
            var prefill: [Double] = [], step: [Double] = []
            for r in 0...runs {
                let cache = model.makeCache(capacity: promptLen + decode + 1)
                let t0 = DispatchTime.now().uptimeNanoseconds
                var logits = try model.forward(ids: ids, cache: cache)
                let t1 = DispatchTime.now().uptimeNanoseconds
                for _ in 0..<decode {
                    let token = logits.withUnsafeBufferPointer { TokenSampler.argmax($0) }
                    logits = try model.forward(ids: [token], cache: cache)
                }
                let t2 = DispatchTime.now().uptimeNanoseconds
                if r > 0 {
                    prefill.append(Double(t1 - t0) / 1e9)
                    step.append(Double(t2 - t1) / 1e9 / Double(decode))
                }
            }
            let p = prefill.sorted()[prefill.count / 2], s = step.sorted()[step.count / 2]
            let name = URL(fileURLWithPath: folder).lastPathComponent
            print("{\"impl\": \"llmga-\(model.config.dtype ?? "stored")-weights\", \"model\": \"\(name)\", \"prefill_s\": \(p), \"prefill_tok_s\": \(Double(promptLen) / p), \"decode_s_per_token\": \(s), \"decode_tok_s\": \(1 / s)}")
            fflush(stdout)
        }
    }
}
