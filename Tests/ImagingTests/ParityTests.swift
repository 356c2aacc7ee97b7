import Foundation
import Testing
@testable import Imaging

/// Parity with OpenCV and Pillow through the fixtures of tools/make_imaging_fixtures.py.
@Suite struct ParityTests {
    static let index = Fixtures.index

    @Test func grayscale8MatchesOpenCVExactly() throws {
        for (name, s) in Self.index.sources {
            let src = try Fixtures.image(s.image)
            let want = try Fixtures.image(s.gray).quantized8()
            let got = src.grayscale8()
            #expect(got.count == want.count)
            #expect(byteDiff(got, want).count == 0, "\(name): \(byteDiff(got, want))")
            // The float conversion is within one level of OpenCV's 8-bit fixed point.
            let d = byteDiff(src.grayscale().quantized8(), want)
            #expect(d.max <= 1, "\(name): float grayscale off by \(d.max)")
        }
    }

    /// Canny on the same 8-bit gray input must match cv2.Canny exactly: 0 differing pixels.
    @Test(arguments: Self.index.canny.map { $0.edges })
    func cannyMatchesOpenCVExactly(edgesFile: String) throws {
        let c = Self.index.canny.first { $0.edges == edgesFile }!
        let s = Self.index.sources[c.source]!
        let want = try Fixtures.image(c.edges).quantized8()
        // From the 8-bit gray OpenCV made...
        let gray = try Fixtures.image(s.gray).quantized8()
        let got = Canny.edges(gray: gray, width: s.width, height: s.height, low: c.low, high: c.high, l2Gradient: c.l2)
        let d = byteDiff(got, want)
        #expect(d.count == 0, "\(edgesFile): \(d.count) pixels differ")
        // ...and through the Image API from the RGB source (gray conversion included).
        let mask = try Fixtures.image(s.image).canny(low: c.low, high: c.high, l2Gradient: c.l2)
        #expect(byteDiff(mask.quantized8(), want).count == 0, "\(edgesFile) via Image.canny")
        #expect(want.filter { $0 != 0 }.count == c.edgePixels)
    }

    @Test func cannyFixturesAreNotTrivial() {
        // Guard against a generator that produced blank outputs: most cases have edges, and
        // thresholds change the result.
        let counts = Self.index.canny.map(\.edgePixels)
        #expect(counts.filter { $0 > 20 }.count >= counts.count * 3 / 4)
        #expect(Set(counts).count > counts.count / 2)
    }

    /// cv2.GaussianBlur on 8-bit input: OpenCV rounds its kernel to fixed point, so the Float
    /// blur is compared after quantising, with a tolerance of 1 level per sample.
    @Test func gaussianBlurMatchesOpenCV8Bit() throws {
        for b in Self.index.blur {
            let src = try Fixtures.image(Self.index.sources[b.source]!.image)
            #expect(Image.gaussianKernelSize(sigma: b.sigma) == b.ksize)
            let got = try src.gaussianBlurred(sigma: b.sigma).quantized8()
            let want = try Fixtures.image(b.u8).quantized8()
            let d = byteDiff(got, want)
            #expect(d.max <= 1, "blur \(b.source) sigma \(b.sigma): max diff \(d.max) levels")
        }
    }

    /// cv2.GaussianBlur on float32 input with the same kernel size: within 1e-5.
    @Test func gaussianBlurMatchesOpenCVFloat() throws {
        for b in Self.index.blur {
            let src = try Fixtures.image(Self.index.sources[b.source]!.image)
            let t = try TIFF.read(contentsOf: Fixtures.url(b.float))
            #expect(t.depth == .float32)
            let got = try src.gaussianBlurred(sigma: b.sigma)
            let d = try #require(got.maxAbsDifference(t.image))
            #expect(d < 1e-5, "blur \(b.source) sigma \(b.sigma): max diff \(d)")
        }
    }

    /// Pillow's Image.resize on 8-bit RGB. Pillow keeps an 8-bit intermediate between its two
    /// passes and uses fixed-point weights; the Float resize is compared after quantising with a
    /// tolerance of 1 level per sample (nearest: exact).
    @Test(arguments: Self.index.resize.map { $0.output })
    func resizeMatchesPillow(output: String) throws {
        let r = Self.index.resize.first { $0.output == output }!
        let src = try Fixtures.image(Self.index.sources[r.source]!.image)
        let filter = try #require(ResizeFilter(rawValue: r.filter))
        let got = try src.resized(width: r.width, height: r.height, filter: filter).quantized8()
        let want = try Fixtures.image(r.output).quantized8()
        let d = byteDiff(got, want)
        #expect(d.max <= (filter == .nearest ? 0 : 1), "\(output): max diff \(d.max), \(d.count) samples differ")
    }
}
