import Foundation
import Tensor
import Testing
@testable import Diffusion

/// Paths and comparisons shared by the UNet and VAE parity tests (fixtures from
/// tools/diffusion/make_unet_vae_fixtures.py).
enum Fixture {
    static func path(_ rel: String) -> String {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent(rel).path
    }

    static func file(_ rel: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: path(rel)) }

    static func config(_ rel: String) throws -> ModelConfig {
        let p = path(rel)
        return try ModelConfig(json: try Data(contentsOf: URL(fileURLWithPath: p)), origin: p)
    }

    static func unet(_ weights: String, config: String = "unet/config.json") throws -> UNet2DConditionModel {
        try UNet2DConditionModel(config: try self.config(config), weights: try file(weights))
    }

    static func vae(_ weights: String) throws -> AutoencoderKL {
        try AutoencoderKL(config: try config("vae/config.json"), weights: try file(weights))
    }
}

/// max |a − b| and max |ref|.
func maxError(_ got: Tensor, _ ref: Tensor) -> (err: Float, refMax: Float) {
    let g = got.scalars, r = ref.scalars
    var e: Float = 0, m: Float = 0
    for i in r.indices { e = max(e, abs(g[i] - r[i])); m = max(m, abs(r[i])) }
    return (e, m)
}

/// Expects equal shapes and max |got − ref| ≤ rel · max|ref|; prints the achieved ratio.
func expectClose(_ got: Tensor, _ ref: Tensor, rel: Float = 1e-4, _ label: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.shape == ref.shape, "\(label): shape \(got.shape) vs \(ref.shape)", sourceLocation: sourceLocation)
    guard got.shape == ref.shape else { return }
    let (e, m) = maxError(got, ref)
    print("\(label): max abs error \(e), max |ref| \(m), ratio \(e / max(m, 1e-30))")
    #expect(m > 0, "\(label): reference is all zeros", sourceLocation: sourceLocation)
    #expect(e <= rel * m, "\(label): max abs error \(e) > \(rel) × \(m)", sourceLocation: sourceLocation)
}
