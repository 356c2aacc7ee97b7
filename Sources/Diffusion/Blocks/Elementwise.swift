import Foundation
import Tensor

enum Elementwise {
    /// a + b (same shapes), into a new tensor.
    static func add(_ a: Tensor, _ b: Tensor, what: String) throws -> Tensor {
        guard a.shape == b.shape else { throw shapeError(what, b.shape, expected: "\(a.shape)") }
        return try Tensor(shape: a.shape) { o in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    let box = UnsafeSendableBox((ap.baseAddress!, bp.baseAddress!, o.baseAddress!))
                    Parallel.forRanges(o.count, minPerChunk: 1 << 15) { r in
                        let (x, y, z) = box.value
                        for i in r { z[i] = x[i] + y[i] }
                    }
                }
            }
        }
    }
}
