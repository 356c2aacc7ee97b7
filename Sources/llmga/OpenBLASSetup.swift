import Foundation

/// Debian's OpenBLAS 0.3.21 does not recognise recent Xeon models and falls back to SSE3 sgemm
/// kernels, about 5x slower than its AVX-512 ones. It reads `OPENBLAS_CORETYPE` only when the
/// library loads, so on an AVX-512 machine without the variable set, llmga sets it and re-executes
/// itself once, before anything else runs. Set `OPENBLAS_CORETYPE` yourself to choose otherwise.
enum OpenBLASSetup {
    static func reexecIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["LLMGA_REEXECED"] == nil, cpuHasAVX512() else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        setenv("LLMGA_REEXECED", "1", 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // execv returned: it failed. Carry on with the slower kernels.
        for p in cargs { free(p) }
    }

    static func cpuHasAVX512() -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
        for line in info.split(separator: "\n") where line.hasPrefix("flags") {
            return line.split(separator: " ").contains("avx512f")
        }
        return false
    }
}
