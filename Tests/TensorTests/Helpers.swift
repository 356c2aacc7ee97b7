import Foundation
import Testing
@testable import Tensor

/// Absolute path of a file under Tests/TensorTests/Fixtures.
func fixturePath(_ name: String) -> String {
    guard let base = Bundle.module.resourcePath else { fatalError("test bundle has no resource path") }
    return base + "/Fixtures/" + name
}

/// A fresh empty temporary directory for one test.
func makeTempDir() throws -> String {
    let dir = NSTemporaryDirectory() + "tensor-tests-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// Raw safetensors bytes: 8-byte little-endian header length, header text, data.
func rawSafeTensors(header: String, data: [UInt8] = [], lengthOverride: UInt64? = nil) -> [UInt8] {
    let h = Array(header.utf8)
    var out: [UInt8] = []
    withUnsafeBytes(of: (lengthOverride ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
    out += h
    out += data
    return out
}

func writeBytes(_ bytes: [UInt8], _ path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// Max |a-b| and max |b| over two equal-length arrays.
func maxAbsError(_ a: [Float], _ b: [Float]) -> (err: Float, ref: Float) {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var e: Float = 0, r: Float = 0
    for i in a.indices {
        e = max(e, abs(a[i] - b[i]))
        r = max(r, abs(b[i]))
    }
    return (e, r)
}
