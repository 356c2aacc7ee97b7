import Foundation
import Imaging
import Tensor
import Testing

/// Workflows/t2i.yaml through the CLI on the tiny pipeline fixture: the saved PNG must be diffusers'
/// image for the same prompt, seed, sampler and steps (tools/diffusion/make_pipeline_fixture.py).
@Suite(.serialized) struct StableDiffusionCLITests {
    let fixture = packageRoot.appendingPathComponent("Tests/DiffusionTests/Fixtures/pipeline")
    let workflow = packageRoot.appendingPathComponent("Workflows/t2i.yaml").path

    @Test func textToImageWorkflowMatchesDiffusersAndIsCached() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = try JSONSerialization.jsonObject(with: Data(contentsOf: fixture.appendingPathComponent("cases.json"))) as! [[String: Any]]
        let c = cases.first { $0["name"] as? String == "t2i_pndm" }!
        let args = ["run", workflow, "--cache-dir", dir.appendingPathComponent("cache").path,
                    "--set", "model=\(fixture.appendingPathComponent("model").path)",
                    "--set", "prompt=\(c["prompt"] as! String)", "--set", "negative=\(c["negative"] as! String)",
                    "--set", "seed=\(c["seed"] as! Int)", "--set", "steps=\(c["steps"] as! Int)",
                    "--set", "width=64", "--set", "height=64"]
        let r = try llmga(args + ["--events", "jsonl"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        // Step progress is reported.
        let progress = jsonLines(r.stdout).filter { $0["event"] as? String == "node_progress" && $0["node"] as? String == "image" }
        #expect(progress.count >= c["steps"] as! Int)

        let png = try PNG.read(contentsOf: dir.appendingPathComponent("out/t2i-\(c["seed"] as! Int).png"))
        let ref = try SafeTensorsFile(path: fixture.appendingPathComponent("expected.safetensors").path).tensor("t2i_pndm")
        #expect(png.image.width == 64 && png.image.height == 64 && ref.count == png.image.pixels.count)
        var se = 0.0
        let refPixels = ref.scalars
        for i in png.image.pixels.indices { se += Double((png.image.pixels[i] - refPixels[i]) * (png.image.pixels[i] - refPixels[i])) }
        let psnr = 10 * log10(1 / (se / Double(refPixels.count)))
        #expect(psnr >= 40, "PSNR \(psnr) dB against diffusers")

        // Nothing runs the second time (the model folder is content-hashed).
        let again = try llmga(args, cwd: dir)
        #expect(again.stderr.contains("4 nodes: 0 run, 4 cached"), "\(again.stderr)")
    }

    @Test func aMissingModelIsANodeErrorNamingThePath() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try llmga(["run", workflow, "--cache", "none", "--set", "model=nowhere/sd15"], cwd: dir)
        #expect(r.status == 1)
        #expect(r.stderr.contains("node 'sd' (sd.checkpoint) port 'path'") && r.stderr.contains("nowhere/sd15"), "\(r.stderr)")
    }
}
