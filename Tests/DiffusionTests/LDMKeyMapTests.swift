import Foundation
import Tensor
import Testing
@testable import Diffusion

/// Every SD1.5 tensor: original single-file name, diffusers name, shapes (from the reference table).
func keymapRows() throws -> [(ldm: String, component: String, key: String, diffusersShape: String, ldmShape: String)] {
    let url = Bundle.module.url(forResource: "sd15-keymap", withExtension: "tsv", subdirectory: "Fixtures")!
    let text = try String(contentsOf: url, encoding: .utf8)
    return text.split(separator: "\n").dropFirst().map { line in
        let f = line.split(separator: "\t").map(String.init)
        let slash = f[1].firstIndex(of: "/")!
        return (f[0], String(f[1][..<slash]), String(f[1][f[1].index(after: slash)...]), f[2], f[3])
    }
}

@Suite struct LDMKeyMapTests {
    @Test func everySD15TensorMapsToItsDiffusersName() throws {
        let rows = try keymapRows()
        #expect(rows.count == 1130)
        let map = LDMKeyMap.build(keys: rows.map(\.ldm) + ["betas", "alphas_cumprod", "model_ema.decay",
                                                           "cond_stage_model.transformer.text_model.embeddings.position_ids"])
        #expect(map.count == rows.count, "ignored keys must not map")
        for r in rows {
            let t = map[r.ldm]
            #expect(t?.component.rawValue == r.component, "\(r.ldm)")
            #expect(t?.key == r.key, "\(r.ldm) -> \(t?.key ?? "nil"), expected \(r.key)")
            #expect(t?.squeezeTo2D == (r.diffusersShape != r.ldmShape), "\(r.ldm)")
        }
    }

    @Test func oldTextEncoderKeysWithoutTextModelPrefix() {
        let map = LDMKeyMap.build(keys: ["cond_stage_model.transformer.embeddings.token_embedding.weight"])
        #expect(map.values.first?.key == "text_model.embeddings.token_embedding.weight")
    }

    /// A checkpoint file in the LDM layout, read through the mapped view, with kind detection and a
    /// squeezed attention weight.
    @Test func singleFileCheckpointPresentsDiffusersNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ldm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = SafeTensorsWriter()
        func add(_ key: String, _ shape: [Int], dtype: DType = .f16) throws {
            let n = shape.reduce(1, *)
            let values = (0..<n).map { Float($0 % 7) * 0.25 }
            try w.add(key, shape: shape, floats: values, as: dtype)
        }
        try add("model.diffusion_model.input_blocks.0.0.weight", [8, 9, 3, 3])
        try add("model.diffusion_model.input_blocks.3.0.op.weight", [8, 8, 3, 3])
        try add("first_stage_model.decoder.mid.attn_1.q.weight", [4, 4, 1, 1], dtype: .f32)
        try add("first_stage_model.decoder.up.0.block.0.nin_shortcut.weight", [4, 8, 1, 1])
        try add("first_stage_model.decoder.up.1.upsample.conv.weight", [4, 4, 3, 3])
        try add("cond_stage_model.transformer.text_model.final_layer_norm.weight", [4])
        try add("betas", [10], dtype: .f32)
        let path = dir.appendingPathComponent("model.safetensors").path
        try w.write(to: path)

        let ckpt = try LDMCheckpoint(source: try SafeTensorsFile(path: path))
        #expect(ckpt.kind == .sd15Inpainting)
        #expect(ckpt.unet.keys == ["conv_in.weight", "down_blocks.0.downsamplers.0.conv.weight"])
        #expect(try ckpt.unet.stored("conv_in.weight").shape == [8, 9, 3, 3])
        let q = try ckpt.vae.stored("decoder.mid_block.attentions.0.to_q.weight")
        #expect(q.shape == [4, 4])
        #expect(try q.floats() == (0..<16).map { Float($0 % 7) * 0.25 })
        // Two decoder levels: up.0 is the last diffusers up block.
        #expect(ckpt.vae.contains("decoder.up_blocks.1.resnets.0.conv_shortcut.weight"))
        #expect(ckpt.vae.contains("decoder.up_blocks.0.upsamplers.0.conv.weight"))
        #expect(ckpt.textEncoder.keys == ["text_model.final_layer_norm.weight"])
        do {
            _ = try ckpt.unet.stored("conv_in.bias")
            Issue.record("expected a missing-key error")
        } catch {
            #expect("\(error)".contains("conv_in.bias") && "\(error)".contains("model.safetensors [unet]"))
        }
    }

    @Test func aFileThatIsNotACheckpointIsRefusedClearly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ldm-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = SafeTensorsWriter()
        try w.add("encoder.weight", shape: [2], floats: [1, 2])
        let path = dir.appendingPathComponent("lora.safetensors").path
        try w.write(to: path)
        #expect(throws: DiffusionError.self) { try LDMCheckpoint(source: try SafeTensorsFile(path: path)) }
    }
}
