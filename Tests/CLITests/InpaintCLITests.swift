import Foundation
import Imaging
import Tensor
import Testing

/// Workflows/inpaint.yaml through the CLI on the inpainting fixture (tools/diffusion/make_inpaint_fixture.py):
/// the image and mask come from PNG files, the mask through mask.from-image, and the saved PNG must be
/// diffusers' StableDiffusionInpaintPipeline image for the same settings.
@Suite(.serialized) struct InpaintCLITests {
    let fixture = packageRoot.appendingPathComponent("Tests/DiffusionTests/Fixtures/inpaint")
    let workflow = packageRoot.appendingPathComponent("Workflows/inpaint.yaml").path

    /// One case of the fixture's cases.json (tools/diffusion/make_inpaint_fixture.py).
    struct Case: Decodable {
        var name: String, model: String, prompt: String, negative: String
        var seed: Int, steps: Int, cfg: Double, strength: Double
    }

    func sets(_ c: Case, model: String) -> [String] {
        ["--set", "model=\(model)",
         "--set", "image=\(fixture.appendingPathComponent("image.png").path)",
         "--set", "mask=\(fixture.appendingPathComponent("mask.png").path)",
         "--set", "prompt=\(c.prompt)", "--set", "negative=\(c.negative)",
         "--set", "seed=\(c.seed)", "--set", "steps=\(c.steps)",
         "--set", "cfg=\(c.cfg)", "--set", "strength=\(c.strength)"]
    }

    func psnr(_ png: URL, _ name: String) throws -> Double {
        let image = try PNG.read(contentsOf: png).image
        let ref = try SafeTensorsFile(path: fixture.appendingPathComponent("expected.safetensors").path).tensor(name).scalars
        #expect(image.width == 64 && image.height == 64 && ref.count == image.pixels.count)
        var se = 0.0
        for i in image.pixels.indices { se += Double((image.pixels[i] - ref[i]) * (image.pixels[i] - ref[i])) }
        return 10 * log10(1 / (se / Double(ref.count)))
    }

    @Test(arguments: ["inpaint9_pndm", "inpaint4_pndm"])
    func inpaintWorkflowMatchesDiffusers(name: String) throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = try JSONDecoder().decode([Case].self, from: Data(contentsOf: fixture.appendingPathComponent("cases.json")))
        let c = try #require(cases.first { $0.name == name })
        let model = c.model == "inpaint" ? fixture.appendingPathComponent("model")
            : fixture.deletingLastPathComponent().appendingPathComponent("pipeline/model")
        let r = try llmga(["run", workflow, "--cache", "none"] + sets(c, model: model.path), cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let p = try psnr(dir.appendingPathComponent("out/inpaint-\(c.seed).png"), name)
        #expect(p >= 40, "\(name): PSNR \(p) dB against diffusers")
    }

    @Test func anInpaintingUNetIsRefusedByTextToImage() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try llmga(["run", packageRoot.appendingPathComponent("Workflows/t2i.yaml").path, "--cache", "none",
                           "--set", "model=\(fixture.appendingPathComponent("model").path)", "--set", "steps=2",
                           "--set", "width=64", "--set", "height=64"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("port 'unet': this is a 9-channel inpainting UNet; use it with sd.inpaint"), "\(r.stderr)")
    }

    @Test func aMaskOfAnotherSizeIsANodeError() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        try PNG.write(Image(width: 32, height: 32, channels: 1, fill: 1), to: dir.appendingPathComponent("small.png"))
        let r = try llmga(["run", workflow, "--cache", "none",
                           "--set", "model=\(fixture.appendingPathComponent("model").path)",
                           "--set", "image=\(fixture.appendingPathComponent("image.png").path)",
                           "--set", "mask=small.png", "--set", "steps=2"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("node 'inpaint' (sd.inpaint) port 'mask': is 32x32 but the image is 64x64"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }
}
