import Foundation
import Testing
import Tensor
@testable import Diffusion

/// The scheduler parity fixtures written by tools/diffusion/make_scheduler_fixtures.py.
enum SchedulerFixtures {
    struct Case: Decodable, CustomStringConvertible {
        let name: String
        let scheduler: String
        let steps: Int
        let eta: Double
        let strength: Double
        let seed: UInt64
        let config: String
        var description: String { name }
    }

    struct Inversion: Decodable {
        let steps: Int
        let seed: UInt64
        let config: String
    }

    struct Metadata: Decodable {
        let diffusers: String
        let shape: [Int]
        let cases: [Case]
        let training: [String: String]
        let rescale_zero_snr: [String: Bool]
        let inversion: Inversion
    }

    static func path(_ name: String) -> String {
        guard let base = Bundle.module.resourcePath else { fatalError("test bundle has no resource path") }
        return base + "/Fixtures/schedulers/" + name
    }

    static let file: SafeTensorsFile = {
        do { return try SafeTensorsFile(path: path("schedulers.safetensors")) } catch { fatalError("cannot open scheduler fixtures: \(error)") }
    }()

    static let metadata: Metadata = {
        guard let text = file.metadata["fixtures"] else { fatalError("scheduler fixtures have no 'fixtures' metadata") }
        do { return try JSONDecoder().decode(Metadata.self, from: Data(text.utf8)) } catch { fatalError("bad fixture metadata: \(error)") }
    }()

    static var cases: [Case] { metadata.cases }

    static func config(_ json: String) throws -> SchedulerConfig {
        try SchedulerConfig(jsonData: Data(json.utf8), path: "fixture config")
    }
}

/// The deterministic stand-in for the UNet used by the fixtures (torch float32 arithmetic):
/// `eps = 0.3 · x_in + 0.1 · cos(float32(t) / 100)`.
func standInUNet(_ xIn: Tensor, timestep t: Float) throws -> Tensor {
    let c: Float = 0.1 * cos(t / 100)
    return try Tensor(shape: xIn.shape, scalars: xIn.scalars.map { 0.3 * $0 + c })
}

/// max |a − b| and max |b|.
func maxAbsError(_ a: [Float], _ b: [Float]) -> (err: Float, ref: Float) {
    precondition(a.count == b.count, "length mismatch \(a.count) vs \(b.count)")
    var e: Float = 0, r: Float = 0
    for i in a.indices {
        e = max(e, abs(a[i] - b[i]))
        r = max(r, abs(b[i]))
    }
    return (e, r)
}

func bitMismatches(_ a: [Float], _ b: [Float]) -> Int {
    zip(a, b).filter { $0.0.bitPattern != $0.1.bitPattern }.count + abs(a.count - b.count)
}
