import Foundation
import Testing
import Tensor
@testable import Diffusion

/// Paths and readers for the CLIP fixtures (tools/diffusion/make_clip_fixtures.py).
enum CLIPFixtures {
    static func path(_ name: String) -> String {
        guard let base = Bundle.module.resourcePath else { fatalError("test bundle has no resource path") }
        return base + "/Fixtures/clip/" + name
    }

    /// The bundled real vocabulary (Sources/Diffusion/Resources/clip), found the way llmga finds it at run time.
    static let assets: String = BundledCLIPVocabulary.files!.vocab.deletingLastPathComponent().path

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path(name)))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func ints(_ v: Any?) -> [Int] { (v as? [Any] ?? []).map { ($0 as! NSNumber).intValue } }
    static func doubles(_ v: Any?) -> [Double] { (v as? [Any] ?? []).map { ($0 as! NSNumber).doubleValue } }

    // Loaded once; a failure is reported by each test that uses them (never a crash of the test process).
    private static let realResult = Result { try CLIPTokenizer(folder: assets) }
    private static let smallResult = Result { try CLIPTokenizer(folder: path("tok-small")) }
    private static let expectedResult = Result { try SafeTensorsFile(path: path("expected.safetensors")) }
    private static let f32Result = Result { try CLIPTextModel(folder: path("text_encoder")) }
    private static let f16Result = Result { try CLIPTextModel(folder: path("text_encoder"), weightsFile: "model.fp16.safetensors") }
    private static let bf16Result = Result { try CLIPTextModel(folder: path("text_encoder_gelu")) }

    static func realTokenizer() throws -> CLIPTokenizer { try realResult.get() }
    static func smallTokenizer() throws -> CLIPTokenizer { try smallResult.get() }
    static func expected() throws -> SafeTensorsFile { try expectedResult.get() }
    static func f32() throws -> CLIPTextModel { try f32Result.get() }
    static func f16() throws -> CLIPTextModel { try f16Result.get() }
    static func bf16() throws -> CLIPTextModel { try bf16Result.get() }
}

/// Max |a − b| and max |b| over two equally long Float arrays.
func errorStats(_ a: [Float], _ b: [Float]) -> (maxAbsError: Float, maxAbsReference: Float) {
    precondition(a.count == b.count)
    var e: Float = 0, m: Float = 0
    for i in a.indices {
        e = max(e, abs(a[i] - b[i]))
        m = max(m, abs(b[i]))
        if a[i].isNaN { e = .infinity }
    }
    return (e, m)
}

/// Expects `actual` to equal the fixture tensor `key` within `relative × max|reference|`; returns the
/// achieved relative error.
@discardableResult
func expectClose(_ actual: Tensor, _ key: String, relative: Float = 1e-4,
                 sourceLocation: SourceLocation = #_sourceLocation) throws -> Float {
    let ref = try CLIPFixtures.expected().stored(key)
    let shape = actual.shape.first == 1 ? Array(actual.shape.dropFirst()) : actual.shape
    #expect(shape == ref.shape, "shape of \(key)", sourceLocation: sourceLocation)
    guard shape == ref.shape else { return .infinity }
    let (e, m) = errorStats(actual.scalars, try ref.floats())
    #expect(m > 0, sourceLocation: sourceLocation)
    #expect(e <= relative * m, "\(key): max abs error \(e), max |ref| \(m)", sourceLocation: sourceLocation)
    return e / m
}
