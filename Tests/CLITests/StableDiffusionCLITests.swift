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

    /// image-to-image and the VAE round trip through the nodes, on the tiny pipeline.
    @Test func imageToImageAndVAENodesRun() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let yaml = """
        version: 1
        name: i2i
        params: { model: x, image: x }
        nodes:
          sd: { type: sd.checkpoint, with: { path: "${model}" } }
          picture: { type: image.load, with: { path: "${image}" } }
          small: { type: image.resize, with: { image: $picture.image, width: 64, height: 64 } }
          prompt: { type: sd.encode-prompt, with: { clip: $sd.clip, text: "a house on a hill", max-chunks: 1 } }
          redraw:
            type: sd.image-to-image
            with: { unet: $sd.unet, vae: $sd.vae, conditioning: $prompt.conditioning, image: $small.image, strength: 0.5, steps: 4, seed: 1 }
          latent: { type: sd.vae-encode, with: { vae: $sd.vae, image: $small.image } }
          back: { type: sd.vae-decode, with: { vae: $sd.vae, latent: $latent.latent } }
          save1: { type: image.save, with: { image: $redraw.image, path: out/redraw.png } }
          save2: { type: image.save, with: { image: $back.image, path: out/roundtrip.png } }
          odd: { type: image.resize, with: { image: $picture.image, width: 66, height: 64 } }
        """
        try Data(yaml.utf8).write(to: dir.appendingPathComponent("i2i.yaml"))
        let sets = ["--set", "model=\(fixture.appendingPathComponent("model").path)",
                    "--set", "image=\(packageRoot.appendingPathComponent("Assets/images/sample.png").path)"]
        let r = try llmga(["run", "i2i.yaml", "--cache", "none"] + sets, cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["out/redraw.png", "out/roundtrip.png"] {
            let png = try PNG.read(contentsOf: dir.appendingPathComponent(f))
            #expect(png.image.width == 64 && png.image.height == 64, "\(f)")
        }
        // A size the VAE cannot take is a node error on the image port.
        let bad = yaml.replacingOccurrences(of: "image: $small.image, strength", with: "image: $odd.image, strength")
        try Data(bad.utf8).write(to: dir.appendingPathComponent("bad.yaml"))
        let e = try llmga(["run", "bad.yaml", "--cache", "none"] + sets, cwd: dir)
        #expect(e.status == 1 && e.stderr.contains("node 'redraw' (sd.image-to-image) port 'image'"), "\(e.stderr)")
    }
}
