import Foundation
import Tensor
import Testing
@testable import Diffusion

/// Writes a minimal diffusers folder: configs, one tensor per component, tokenizer files.
func makeDiffusersFolder(_ root: URL, unetWeights: String = "diffusion_pytorch_model.safetensors", inChannels: Int = 4) throws {
    let fm = FileManager.default
    func write(_ rel: String, _ text: String) throws {
        let u = root.appendingPathComponent(rel)
        try fm.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: u)
    }
    func weights(_ rel: String, _ key: String, _ shape: [Int]) throws {
        var w = SafeTensorsWriter()
        try w.add(key, shape: shape, floats: [Float](repeating: 0.5, count: shape.reduce(1, *)), as: .f16)
        let u = root.appendingPathComponent(rel)
        try fm.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true)
        try w.write(to: u.path)
    }
    try write("model_index.json", #"{"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"], "scheduler": ["diffusers", "PNDMScheduler"]}"#)
    try write("unet/config.json", #"{"in_channels": \#(inChannels)}"#)
    try write("vae/config.json", "{}")
    try write("text_encoder/config.json", "{}")
    try write("tokenizer/vocab.json", "{}")
    try write("tokenizer/merges.txt", "#version: 0.2\n")
    try write("scheduler/scheduler_config.json", #"{"_class_name": "PNDMScheduler"}"#)
    try weights("unet/\(unetWeights)", "conv_in.weight", [8, inChannels, 3, 3])
    try weights("vae/diffusion_pytorch_model.safetensors", "decoder.conv_in.weight", [4, 4, 3, 3])
    try weights("text_encoder/model.safetensors", "text_model.final_layer_norm.weight", [4])
}

@Suite struct PipelineFilesTests {
    func temp() throws -> URL {
        let u = FileManager.default.temporaryDirectory.appendingPathComponent("pf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: u, withIntermediateDirectories: true)
        return u
    }

    @Test func opensADiffusersFolderIncludingFP16VariantsAndInpainting() throws {
        let root = try temp()
        defer { try? FileManager.default.removeItem(at: root) }
        try makeDiffusersFolder(root, unetWeights: "diffusion_pytorch_model.fp16.safetensors", inChannels: 9)
        let files = try PipelineFiles.open(folder: root.path)
        #expect(files.kind == .sd15Inpainting)
        #expect(try files.unet.weights.stored("conv_in.weight").dtype == .f16)
        #expect(try files.unet.config()["in_channels"] as? Int == 9)
        #expect(files.tokenizerFolder.lastPathComponent == "tokenizer")
    }

    /// transformers 5 saves the CLIP tokenizer as tokenizer.json only; such a folder opens and tokenizes.
    @Test func tokenizerJSONOnlyFolderOpens() throws {
        let root = try temp()
        defer { try? FileManager.default.removeItem(at: root) }
        try makeDiffusersFolder(root)
        let tok = root.appendingPathComponent("tokenizer")
        try FileManager.default.removeItem(at: tok)
        try FileManager.default.copyItem(at: URL(fileURLWithPath: CLIPFixtures.path("tok-json")), to: tok)
        let files = try PipelineFiles.open(folder: root.path)
        let t = try CLIPTokenizer(folder: files.tokenizerFolder.path)
        #expect(t.bosTokenID == 912)
        try FileManager.default.removeItem(at: tok.appendingPathComponent("tokenizer.json"))
        #expect(throws: DiffusionError("missing: the CLIP tokenizer needs tokenizer/vocab.json and tokenizer/merges.txt, or tokenizer/tokenizer.json",
                                       file: tok.appendingPathComponent("vocab.json").path)) {
            try PipelineFiles.open(folder: root.path)
        }
    }

    @Test func missingPiecesAreNamed() throws {
        let root = try temp()
        defer { try? FileManager.default.removeItem(at: root) }
        try makeDiffusersFolder(root)
        try FileManager.default.removeItem(at: root.appendingPathComponent("vae/config.json"))
        #expect(throws: DiffusionError("missing", file: root.appendingPathComponent("vae/config.json").path)) {
            try PipelineFiles.open(folder: root.path)
        }
        try Data("{}".utf8).write(to: root.appendingPathComponent("vae/config.json"))
        let weights = root.appendingPathComponent("unet/diffusion_pytorch_model.safetensors")
        try FileManager.default.moveItem(at: weights, to: root.appendingPathComponent("unet/diffusion_pytorch_model.bin"))
        do {
            _ = try PipelineFiles.open(folder: root.path)
            Issue.record("expected an error")
        } catch let e as DiffusionError {
            #expect(e.file?.hasSuffix("unet/diffusion_pytorch_model.bin") == true && e.message.contains("safetensors"))
        }
        #expect(throws: DiffusionError.self) { try PipelineFiles.open(folder: root.appendingPathComponent("nope").path) }
    }

    @Test func aCorruptWeightsFileIsAnErrorNamingIt() throws {
        let root = try temp()
        defer { try? FileManager.default.removeItem(at: root) }
        try makeDiffusersFolder(root)
        let weights = root.appendingPathComponent("vae/diffusion_pytorch_model.safetensors")
        let data = try Data(contentsOf: weights)
        try data.prefix(data.count / 2).write(to: weights)
        do {
            _ = try PipelineFiles.open(folder: root.path)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)".contains("vae/diffusion_pytorch_model.safetensors"))
        }
    }
}
