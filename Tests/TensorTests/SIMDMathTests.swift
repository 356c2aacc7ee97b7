import Foundation
import Testing
@testable import Tensor

@Suite struct SIMDMathTests {
    /// Evaluates a vector function on a scalar grid.
    func eval(_ xs: [Float], _ f: (SIMD16<Float>) -> SIMD16<Float>) -> [Float] {
        var out = [Float](repeating: 0, count: xs.count)
        xs.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { SIMDMath.apply(s.baseAddress!, $0.baseAddress!, xs.count, f) }
        }
        return out
    }

    @Test func expWithinTwoUlp() {
        let xs = stride(from: -87.0, through: 88.0, by: 0.00731).map { Float($0) } + [0, -0.0, 1e-30, -1e-30]
        let ys = eval(xs, SIMDMath.exp)
        var worst = 0.0
        for (x, y) in zip(xs, ys) {
            let ref = Foundation.exp(Double(x))
            worst = max(worst, abs(Double(y) - ref) / ref)
        }
        #expect(worst < 2.5e-7, "max relative error \(worst)")
        #expect(eval([-.infinity, -100, -87.4], SIMDMath.exp) == [0, 0, 0])
        #expect(eval([0], SIMDMath.exp) == [1])
    }

    @Test func erfMatchesTorchFormulaAccuracy() {
        let xs = stride(from: -6.0, through: 6.0, by: 0.001).map { Float($0) }
        let ys = eval(xs, SIMDMath.erf)
        var worst = 0.0
        for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - Foundation.erf(Double(x)))) }
        #expect(worst < 5e-7, "max abs error \(worst)")
        #expect(eval([0, -0.0], SIMDMath.erf).allSatisfy { $0 == 0 })
    }

    @Test func tanhAccuracy() {
        let xs = stride(from: -20.0, through: 20.0, by: 0.0013).map { Float($0) }
        let ys = eval(xs, SIMDMath.tanh)
        var worst = 0.0
        for (x, y) in zip(xs, ys) { worst = max(worst, abs(Double(y) - Foundation.tanh(Double(x)))) }
        #expect(worst < 3e-7, "max abs error \(worst)")
    }
}
