import Foundation
import Imaging
import NodeKit
import Testing
@testable import CoreNodes

@Suite struct PackTests {
    @Test func registersEveryNodeWithDocsAndVersion() throws {
        let registry = NodeRegistry()
        try CoreNodes.register(into: registry)
        let ids = Set(registry.all.map(\.id))
        #expect(ids == ["image.load", "image.save", "image.resize", "image.crop", "image.pad-for-outpaint",
                        "image.composite", "image.canny", "image.blur", "mask.threshold", "mask.invert", "mask.grow",
                        "mask.blur", "mask.from-image", "text.template", "text.concat", "text.save", "math.float", "math.int"])
        for node in registry.all {
            #expect(node.version == 1, "\(node.id)")
            #expect(node.pack == CoreNodes.pack)
            #expect(!node.schema.summary.isEmpty, "\(node.id)")
            for input in node.schema.inputs {
                #expect(!input.doc.isEmpty, "\(node.id).\(input.name) has no doc")
                if let choices = input.choices, case .text(let d)? = input.defaultValue {
                    #expect(choices.contains(d), "\(node.id).\(input.name) default not among choices")
                }
                if let range = input.range, let d = input.defaultValue {
                    switch d {
                    case .int(let i): #expect(range.contains(Double(i)), "\(node.id).\(input.name)")
                    case .float(let f): #expect(range.contains(f), "\(node.id).\(input.name)")
                    default: Issue.record("\(node.id).\(input.name): range on a non-numeric input")
                    }
                }
            }
            for output in node.schema.outputs { #expect(!output.doc.isEmpty, "\(node.id).\(output.name)") }
        }
        #expect(registry.node("image.save")!.schema.isSink)
        #expect(registry.node("image.load")!.purity == .readsFiles)
        #expect(registry.node("image.load")!.schema.input("path")!.role == .inputFile)
        #expect(registry.node("image.save")!.schema.input("path")!.role == .outputFile)
        // Registering twice is refused by the registry.
        #expect(throws: RegistryError.self) { try CoreNodes.register(into: registry) }
    }

    @Test func rasterAndImageShareStorage() {
        let r = Raster(width: 64, height: 64, channels: 3, pixels: [Float](repeating: 0.5, count: 64 * 64 * 3))
        let img = Image(r)
        let back = Raster(img, depth: .uint16)
        r.pixels.withUnsafeBufferPointer { a in
            img.pixels.withUnsafeBufferPointer { b in
                back.pixels.withUnsafeBufferPointer { c in
                    #expect(a.baseAddress == b.baseAddress)
                    #expect(b.baseAddress == c.baseAddress)
                }
            }
        }
    }
}

@Suite struct ImageIONodeTests {
    func sampleRGBA() -> Image {
        var img = Image(width: 6, height: 4, channels: 4, fill: 0)
        for y in 0..<4 {
            for x in 0..<6 {
                img[x, y, 0] = Float(x) / 5
                img[x, y, 1] = Float(y) / 3
                img[x, y, 2] = 0.5
                img[x, y, 3] = x < 3 ? 1 : 0.25
            }
        }
        return img
    }

    @Test func loadSplitsAlphaIntoAMask() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try PNG.write(sampleRGBA(), to: dir.appendingPathComponent("in.png"), depth: .uint16)
        let ctx = TestContext(baseDirectory: dir)
        let out = try await run(ImageLoad.self, ["path": .text("in.png")], context: ctx)
        let image = try #require(out["image"]?.raster)
        let mask = try #require(out["mask"]?.raster)
        #expect(image.channels == 3 && image.width == 6 && image.height == 4)
        #expect(image.depth == .uint16)
        #expect(out["width"]?.intValue == 6 && out["height"]?.intValue == 4)
        #expect(mask.channels == 1)
        #expect(mask.pixels[0] == 0 && abs(mask.pixels[5] - 0.75) < 1e-4) // 16-bit alpha 0.25
        #expect(abs(image.pixels[3 * 3] - 0.6) < 1e-4) // pixel (3,0) red
        guard case .mask = out["mask"]!, case .image = out["image"]! else {
            Issue.record("wrong value kinds")
            return
        }
    }

    @Test func loadExpandsGrayAndGivesZeroMaskWithoutAlpha() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let gray = Image(width: 3, height: 2, channels: 1, pixels: [0, 0.2, 0.4, 0.6, 0.8, 1])
        try TIFF.write(gray, to: dir.appendingPathComponent("g.tif"), depth: .float32)
        let out = try await run(ImageLoad.self, ["path": .text(dir.appendingPathComponent("g.tif").path)],
                                context: TestContext(baseDirectory: URL(fileURLWithPath: "/")))
        let image = try #require(out["image"]?.raster)
        #expect(image.channels == 3 && image.depth == .float32)
        #expect(Array(image.pixels[3..<6]) == [0.2, 0.2, 0.2])
        #expect(out["mask"]?.raster?.pixels == [0, 0, 0, 0, 0, 0])
    }

    @Test func loadErrorsNameThePathAndPort() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ctx = TestContext(baseDirectory: dir)
        let e1 = await nodeError { _ = try await run(ImageLoad.self, ["path": .text("missing.png")], context: ctx) }
        #expect(e1?.port == "path")
        #expect(e1?.message.contains(dir.appendingPathComponent("missing.png").path) == true)
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("bad.png"))
        let e2 = await nodeError { _ = try await run(ImageLoad.self, ["path": .text("bad.png")], context: ctx) }
        #expect(e2?.port == "path")
        #expect(e2?.message.contains("bad.png") == true)
        var truncated = try PNG.encode(sampleRGBA())
        truncated = truncated.prefix(truncated.count - 20)
        try truncated.write(to: dir.appendingPathComponent("cut.png"))
        let e3 = await nodeError { _ = try await run(ImageLoad.self, ["path": .text("cut.png")], context: ctx) }
        #expect(e3?.port == "path")
    }

    @Test func saveThenLoadRoundTripsWithMetadata() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ctx = TestContext(baseDirectory: dir)
        let src = sampleRGBA().rgb()
        let raster = Raster(width: src.width, height: src.height, channels: 3, pixels: src.pixels, depth: .uint8)
        let out = try await run(ImageSave.self, ["image": .image(raster), "path": .text("out/sub/result.png")], context: ctx)
        let written = dir.appendingPathComponent("out/sub/result.png").standardizedFileURL.path
        #expect(out["path"]?.textValue == written)
        #expect(out.writtenFiles == [written])
        let png = try PNG.read(contentsOf: URL(fileURLWithPath: written))
        #expect(png.bitDepth == 8)
        #expect(png.text("llmga:workflow") == ctx.runInfo.workflowSource)
        #expect(png.text("llmga:engine") == "0.1.0-test")
        let params = try JSONDecoder().decode([String: String].self, from: Data(png.text("llmga:params")!.utf8))
        #expect(params == ctx.runInfo.params)
        let nodes = try JSONDecoder().decode([String: String].self, from: Data(png.text("llmga:nodes")!.utf8))
        #expect(nodes == ctx.runInfo.nodeVersions)
        // And back through image.load: same 8-bit values.
        let loaded = try await run(ImageLoad.self, ["path": .text("out/sub/result.png")], context: ctx)
        let back = try #require(loaded["image"]?.raster)
        #expect(Image(back).quantized8() == src.quantized8())
        // Nothing else in the folder (no temporary files left).
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("out/sub").path) == ["result.png"])
    }

    @Test func saveDepthFollowsTheSourceOrTheChoice() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ctx = TestContext(baseDirectory: dir)
        let img = Image(width: 3, height: 2, channels: 3, pixels: (0..<18).map { Float($0) / 17 })
        func raster(_ d: Raster.SampleDepth) -> Value { .image(Raster(img, depth: d)) }
        _ = try await run(ImageSave.self, ["image": raster(.uint16), "path": .text("a.png")], context: ctx)
        #expect(try PNG.read(contentsOf: dir.appendingPathComponent("a.png")).bitDepth == 16)
        _ = try await run(ImageSave.self, ["image": raster(.float32), "path": .text("b.tiff")], context: ctx)
        let b = try TIFF.read(contentsOf: dir.appendingPathComponent("b.tiff"))
        #expect(b.depth == .float32 && b.image == img)
        _ = try await run(ImageSave.self, ["image": raster(.float32), "path": .text("c.png")], context: ctx)
        #expect(try PNG.read(contentsOf: dir.appendingPathComponent("c.png")).bitDepth == 16)
        _ = try await run(ImageSave.self, ["image": raster(.uint16), "path": .text("d.tif"), "bit-depth": .text("8")], context: ctx)
        #expect(try TIFF.read(contentsOf: dir.appendingPathComponent("d.tif")).depth == .uint8)
        _ = try await run(ImageSave.self, ["image": raster(.uint8), "path": .text("e.data"), "format": .text("png")], context: ctx)
        #expect(ImageFormat.sniff(try Data(contentsOf: dir.appendingPathComponent("e.data"))) == .png)

        let e1 = await nodeError {
            _ = try await run(ImageSave.self, ["image": raster(.uint8), "path": .text("f.png"), "bit-depth": .text("32")], context: ctx)
        }
        #expect(e1?.port == "bit-depth")
        let e2 = await nodeError { _ = try await run(ImageSave.self, ["image": raster(.uint8), "path": .text("g.jpg")], context: ctx) }
        #expect(e2?.port == "path")
        #expect(e2?.message.contains("g.jpg") == true)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("f.png").path))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("g.jpg").path))
    }

    @Test func saveCancelledBeforeRenameLeavesNothing() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raster = Raster(width: 8, height: 8, channels: 3, pixels: [Float](repeating: 0.5, count: 192))
        // First check (before writing) passes; the one just before the rename cancels.
        let ctx = TestContext(baseDirectory: dir, cancelOnCheck: 2)
        await #expect(throws: CancellationError.self) {
            _ = try await run(ImageSave.self, ["image": .image(raster), "path": .text("x/out.png")], context: ctx)
        }
        #expect(ctx.checks.value == 2)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x/out.png").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("x").path).isEmpty)
        // Cancelled before anything is written: not even the folder's contents change.
        let early = TestContext(baseDirectory: dir, cancelOnCheck: 1)
        await #expect(throws: CancellationError.self) {
            _ = try await run(ImageSave.self, ["image": .image(raster), "path": .text("y/out.png")], context: early)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("y").path))
    }

    @Test func saveReplacesAnExistingFileWhole() async throws {
        let dir = try makeTempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let ctx = TestContext(baseDirectory: dir)
        let target = dir.appendingPathComponent("same.png")
        try Data("old contents".utf8).write(to: target)
        let raster = Raster(width: 2, height: 2, channels: 1, pixels: [0, 1, 1, 0])
        _ = try await run(ImageSave.self, ["image": .image(raster), "path": .text("same.png")], context: ctx)
        #expect(try PNG.read(contentsOf: target).image.pixels == [0, 1, 1, 0])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["same.png"])
    }
}
