import Foundation
import Testing
@testable import Tensor

@Suite struct SafeTensorsReadTests {
    @Test func readsEveryDTypeWrittenByPythonSafetensors() throws {
        let f = try SafeTensorsFile(path: fixturePath("io_python.safetensors"))
        #expect(f.metadata["format"] == "pt")
        #expect(f.metadata.count == 1)
        let ref = try f.floats("a.f32")
        #expect(ref.count == 15)
        #expect(try f.info("a.f16").dtype == .f16)
        #expect(try f.info("a.bf16").shape == [3, 5])
        #expect(try f.floats("a.f16") == f.floats("a.f16.as_f32"))
        #expect(try f.floats("a.bf16") == f.floats("a.bf16.as_f32"))
        #expect(try f.info("ids.i64").dtype == .i64)
        let ids = try f.stored("ids.i64")
        #expect(ids.shape == [2, 3])
        #expect((0..<6).map { ids.bytes.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) } == [0, 1, 2, 3, 4, 5])
        #expect(try f.info("bytes.u8").dtype == .u8)
        #expect(try f.info("flags.bool").dtype == .bool)
        #expect(try f.info("scalar.f32").shape == [])
        #expect(try f.floats("scalar.f32") == [2.5])
        #expect(try f.info("empty.f32").shape == [0, 4])
        #expect(try f.floats("empty.f32") == [])
        #expect(throws: SafeTensorsError.notFloatingPoint(file: f.path, key: "ids.i64", dtype: .i64)) {
            _ = try f.floats("ids.i64")
        }
    }

    @Test func convertsIntoProvidedBufferAndChecksItsSize() throws {
        let f = try SafeTensorsFile(path: fixturePath("io_python.safetensors"))
        var buf = [Float](repeating: .nan, count: 15)
        try buf.withUnsafeMutableBufferPointer { try f.read("a.bf16", into: $0) }
        #expect(buf == (try f.floats("a.bf16.as_f32")))
        var small = [Float](repeating: 0, count: 14)
        #expect(throws: SafeTensorsError.destinationSizeMismatch(file: f.path, key: "a.bf16", elements: 15, destination: 14)) {
            try small.withUnsafeMutableBufferPointer { try f.read("a.bf16", into: $0) }
        }
        let t = try f.tensor("a.f16")
        #expect(t.shape == [3, 5])
        #expect(t.scalars == (try f.floats("a.f16.as_f32")))
    }

    @Test func missingKeySuggestsNearbyKeys() throws {
        let f = try SafeTensorsFile(path: fixturePath("io_python.safetensors"))
        do {
            _ = try f.stored("a.f61")
            Issue.record("expected missingKey")
        } catch let e {
            guard case let .missingKey(key, file, suggestions) = e else { Issue.record("wrong error \(e)"); return }
            #expect(key == "a.f61")
            #expect(file == f.path)
            #expect(suggestions.first == "a.f16")
            #expect(e.description.contains("missing key a.f61 in \(f.path) (did you mean a.f16"))
        }
    }

    @Test func shardedCheckpointOpensEachShardOnce() throws {
        let c = try SafeTensorsCheckpoint(path: fixturePath("io_sharded/model.safetensors.index.json"))
        #expect(c.keys == ["embed.weight", "layer.0.bias", "layer.0.weight", "layer.1.weight"])
        #expect(c.shards.count == 2)
        #expect(c.metadata["total_size"] == "52")
        #expect(try c.floats("layer.0.weight") == [0, 1, 2, 3, 4, 5])
        #expect(try c.floats("layer.0.bias") == [0.5, -0.5])
        let w1 = try c.stored("layer.1.weight")
        #expect(w1.dtype == .bf16)
        #expect(w1.source.hasSuffix("model-00002-of-00002.safetensors"))
        let expected: [Float] = [0, 1, 2, 3].map { FloatConversion.floatFromBFloat16Bits(FloatConversion.bfloat16Bits(Float($0) / 3)) }
        #expect(try c.floats("layer.1.weight") == expected)
        #expect(try c.floats("embed.weight") == [1.5, 1.5, 1.5, 1.5])
        #expect(throws: SafeTensorsError.self) { _ = try c.stored("layer.2.weight") }
        do { _ = try c.stored("layer.2.weight") } catch {
            #expect(error.description.contains("did you mean layer.0.weight, layer.1.weight"))
        }
        let single = try SafeTensorsCheckpoint(path: fixturePath("io_sharded/model-00001-of-00002.safetensors"))
        #expect(single.keys == ["layer.0.bias", "layer.0.weight"])
    }

    @Test func shardedIndexErrors() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafeTensorsWriter()
        try w.add("x", shape: [1], floats: [1])
        try w.write(to: dir + "/s.safetensors")
        func index(_ text: String) throws -> String {
            let p = dir + "/i.json"
            try writeBytes(Array(text.utf8), p)
            return p
        }
        var p = try index("{\"weight_map\": {\"y\": \"s.safetensors\"}}")
        #expect(throws: SafeTensorsError.missingKey(key: "y", file: dir + "/s.safetensors (listed in \(p))", suggestions: ["x"])) {
            _ = try SafeTensorsCheckpoint(path: p)
        }
        p = try index("{\"weight_map\": {\"x\": \"missing.safetensors\"}}")
        #expect(throws: SafeTensorsError.cannotOpen(file: dir + "/missing.safetensors", reason: "No such file or directory")) {
            _ = try SafeTensorsCheckpoint(path: p)
        }
        p = try index("{\"weight_map\": {\"x\": \"../s.safetensors\"}}")
        #expect(throws: SafeTensorsError.self) { _ = try SafeTensorsCheckpoint(path: p) }
        p = try index("{\"weight_map\": {\"x\": 3}}")
        #expect(throws: SafeTensorsError.invalidIndex(file: p, reason: "weight_map entry for \"x\" is not a string")) {
            _ = try SafeTensorsCheckpoint(path: p)
        }
        p = try index("{\"metadata\": {}}")
        #expect(throws: SafeTensorsError.invalidIndex(file: p, reason: "missing \"weight_map\" object")) {
            _ = try SafeTensorsCheckpoint(path: p)
        }
        p = try index("{\"weight_map\": {\"x\": \"s.safetensors\",}}")
        #expect(throws: SafeTensorsError.self) { _ = try SafeTensorsCheckpoint(path: p) }
        p = try index("{\"weight_map\": {\"x\": \"s.safetensors\"}}")
        #expect(try SafeTensorsCheckpoint(path: p).floats("x") == [1])
    }
}

@Suite struct SafeTensorsCorruptionTests {
    /// Writes `bytes` to a temporary file and returns the error thrown when opening it.
    func openError(_ bytes: [UInt8]) throws -> (SafeTensorsError?, String) {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/bad.safetensors"
        try writeBytes(bytes, p)
        do {
            _ = try SafeTensorsFile(path: p)
            return (nil, p)
        } catch {
            return (error, p)
        }
    }

    let okEntry = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"

    @Test func validFileOpens() throws {
        let (e, _) = try openError(rawSafeTensors(header: okEntry, data: [UInt8](repeating: 0, count: 8)))
        #expect(e == nil)
    }

    @Test func emptyAndTinyFiles() throws {
        var (e, p) = try openError([])
        #expect(e == .fileTooSmall(file: p, size: 0))
        (e, p) = try openError([1, 2, 3])
        #expect(e == .fileTooSmall(file: p, size: 3))
    }

    @Test func headerLengthBeyondFile() throws {
        var (e, p) = try openError(rawSafeTensors(header: okEntry, data: [0, 0, 0, 0, 0, 0, 0, 0], lengthOverride: 1000))
        #expect(e == .headerLengthOutOfRange(file: p, headerLength: 1000, fileSize: 8 + okEntry.utf8.count + 8))
        (e, p) = try openError(rawSafeTensors(header: "{}", lengthOverride: UInt64.max))
        #expect(e == .headerLengthOutOfRange(file: p, headerLength: UInt64.max, fileSize: 10))
    }

    @Test func truncatedData() throws {
        let (e, p) = try openError(rawSafeTensors(header: okEntry, data: [0, 0, 0, 0]))
        #expect(e == .offsetsOutOfRange(file: p, key: "t", begin: 0, end: 8, dataSize: 4))
    }

    @Test func truncatedHeaderIsBadJSON() throws {
        let full = rawSafeTensors(header: okEntry, data: [UInt8](repeating: 0, count: 8))
        // Keep the declared length but cut the file inside the header.
        let (e, p) = try openError(Array(full.prefix(20)))
        #expect(e == .headerLengthOutOfRange(file: p, headerLength: UInt64(okEntry.utf8.count), fileSize: 20))
    }

    @Test func badJSON() throws {
        for bad in ["{", "{\"t\":}", "[1,2]", "{\"a\":1}x", "{\"a\":1,\"a\":2}", "\u{1}", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},}"] {
            let (e, p) = try openError(rawSafeTensors(header: bad))
            guard case let .invalidHeader(file, reason)? = e else {
                if case .invalidEntry? = e { continue } // {"a":1}: valid JSON, bad entry
                Issue.record("\(bad): expected invalidHeader, got \(String(describing: e))"); continue
            }
            #expect(file == p)
            #expect(!reason.isEmpty)
        }
        let (e, p) = try openError(rawSafeTensors(header: "[1,2]"))
        #expect(e == .invalidHeader(file: p, reason: "expected a JSON object, found array"))
        let (e2, p2) = try openError(rawSafeTensors(header: "{\"a\":1,\"a\":2}"))
        #expect(e2 == .invalidHeader(file: p2, reason: "bad JSON: duplicate key \"a\" at byte 7"))
    }

    @Test func badEntries() throws {
        func entry(_ body: String, data: Int = 8) throws -> (SafeTensorsError?, String) {
            try openError(rawSafeTensors(header: "{\"w\":\(body)}", data: [UInt8](repeating: 0, count: data)))
        }
        var (e, p) = try entry("3")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "expected an object, found integer"))
        (e, p) = try entry("{\"shape\":[2],\"data_offsets\":[0,8]}")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "missing or non-string \"dtype\""))
        (e, p) = try entry("{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}")
        #expect(e == .unsupportedDType(file: p, key: "w", dtype: "F8_E4M3"))
        #expect(e?.description.contains("unsupported dtype \"F8_E4M3\"") == true)
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "shape must hold non-negative integers"))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "shape must hold non-negative integers"))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "\"data_offsets\" must be an array of two integers"))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}")
        #expect(e == .offsetsOutOfRange(file: p, key: "w", begin: 8, end: 0, dataSize: 8))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-4,4]}")
        #expect(e == .offsetsOutOfRange(file: p, key: "w", begin: -4, end: 4, dataSize: 8))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}")
        #expect(e == .sizeMismatch(file: p, key: "w", expectedBytes: 12, actualBytes: 8))
        (e, p) = try entry("{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]}")
        #expect(e == .sizeMismatch(file: p, key: "w", expectedBytes: 4, actualBytes: 8))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,8]}")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "shape [4611686018427387904, 4] is too large"))
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,99999999999999999999]}")
        if case .invalidHeader? = e {} else { Issue.record("huge offset: \(String(describing: e))") }
        (e, p) = try entry("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}")
        #expect(e == .invalidEntry(file: p, key: "w", reason: "unexpected field \"extra\""))
    }

    @Test func overlappingTensors() throws {
        let header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}"
        let (e, p) = try openError(rawSafeTensors(header: header, data: [UInt8](repeating: 0, count: 12)))
        #expect(e == .overlappingTensors(file: p, key: "b", other: "a"))
    }

    @Test func badMetadata() throws {
        var (e, p) = try openError(rawSafeTensors(header: "{\"__metadata__\":{\"k\":1}}"))
        #expect(e == .invalidHeader(file: p, reason: "__metadata__ value for \"k\" must be a string, found integer"))
        (e, p) = try openError(rawSafeTensors(header: "{\"__metadata__\":[]}"))
        #expect(e == .invalidHeader(file: p, reason: "__metadata__ must be an object of strings, found array"))
    }

    @Test func missingFileAndDirectory() throws {
        #expect(throws: SafeTensorsError.cannotOpen(file: "/nonexistent/x.safetensors", reason: "No such file or directory")) {
            _ = try SafeTensorsFile(path: "/nonexistent/x.safetensors")
        }
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: SafeTensorsError.cannotOpen(file: dir, reason: "not a regular file")) {
            _ = try SafeTensorsFile(path: dir)
        }
    }

    /// Every prefix of a valid file and many single-byte corruptions open or throw, never crash.
    @Test func fuzzedFilesNeverCrash() throws {
        var w = SafeTensorsWriter(metadata: ["k": "v"])
        try w.add("a", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6], as: .bf16)
        try w.add("b", shape: [4], floats: [1, 2, 3, 4])
        let good = w.serialized()
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/f.safetensors"
        var opened = 0, failed = 0
        for cut in 0..<good.count {
            try writeBytes(Array(good.prefix(cut)), p)
            do { _ = try SafeTensorsFile(path: p); opened += 1 } catch { failed += 1 }
        }
        #expect(opened == 0) // every proper prefix is invalid
        var g = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var bad = good
            let i = Int.random(in: 0..<min(bad.count, 8 + 200), using: &g)
            bad[i] = UInt8.random(in: 0...255, using: &g)
            try writeBytes(bad, p)
            do {
                let f = try SafeTensorsFile(path: p)
                for k in f.keys where f.infos[k]!.dtype.isFloatingPoint { _ = try f.floats(k) }
            } catch { failed += 1 }
        }
        #expect(failed >= good.count)
    }
}

@Suite struct SafeTensorsWriterTests {
    @Test func roundTripsAllFloatTypesAndMetadata() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let values: [Float] = [0, -0.0, 1.5, -2.25, 3.0e-5, 65504, 1e-7, .infinity]
        var w = SafeTensorsWriter(metadata: ["format": "pt", "quote\"d": "line\nbreak"])
        try w.add("f32", shape: [2, 4], floats: values)
        try w.add("f16", shape: [8], floats: values, as: .f16)
        try w.add("bf16", shape: [8], floats: values, as: .bf16)
        try w.add("f64", shape: [8], floats: values, as: .f64)
        try w.add("raw.i32", dtype: .i32, shape: [2], bytes: [1, 0, 0, 0, 255, 255, 255, 255])
        try w.add("t", try Tensor(shape: [1, 2], scalars: [7, 8]))
        let path = dir + "/out.safetensors"
        try w.write(to: path)
        let f = try SafeTensorsFile(path: path)
        #expect(f.metadata == ["format": "pt", "quote\"d": "line\nbreak"])
        #expect(f.keys == ["bf16", "f16", "f32", "f64", "raw.i32", "t"])
        #expect(try f.floats("f32").map(\.bitPattern) == values.map(\.bitPattern))
        #expect(try f.floats("f64").map(\.bitPattern) == values.map(\.bitPattern))
        #expect(try f.floats("f16") == values.map { Float(FloatConversion.floatFromHalfBits(FloatConversion.halfBits($0))) })
        #expect(try f.floats("bf16") == values.map { FloatConversion.floatFromBFloat16Bits(FloatConversion.bfloat16Bits($0)) })
        #expect(try f.tensor("t").shape == [1, 2])
        let s = try f.stored("raw.i32")
        #expect(s.bytes.loadUnaligned(fromByteOffset: 4, as: Int32.self) == -1)
        // Header padded to 8 bytes: the data section is aligned.
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = raw.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(n % 8 == 0)
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["out.safetensors"])
    }

    @Test func writerRejectsInconsistentInput() throws {
        var w = SafeTensorsWriter()
        #expect(throws: SafeTensorsError.invalidTensor(key: "x", reason: "shape [3] of F32 needs 12 bytes, got 8")) {
            try w.add("x", dtype: .f32, shape: [3], bytes: [UInt8](repeating: 0, count: 8))
        }
        try w.add("x", shape: [1], floats: [1])
        #expect(throws: SafeTensorsError.invalidTensor(key: "x", reason: "added twice")) { try w.add("x", shape: [1], floats: [1]) }
        #expect(throws: SafeTensorsError.self) { try w.add("__metadata__", shape: [1], floats: [1]) }
        #expect(throws: SafeTensorsError.invalidTensor(key: "y", reason: "cannot store Floats as I64")) {
            try w.add("y", shape: [1], floats: [1], as: .i64)
        }
        #expect(throws: SafeTensorsError.self) { try w.write(to: "/nonexistent-dir/x.safetensors") }
    }

    @Test func bf16AndF16RoundingMatchTorch() throws {
        let f = try SafeTensorsFile(path: fixturePath("io_python.safetensors"))
        let src = try f.floats("round.src")
        let bf = try f.stored("round.bf16")
        let hf = try f.stored("round.f16")
        var bfMismatch = 0, hfMismatch = 0, portableMismatch = 0
        for i in src.indices {
            let torchBF = bf.bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            let torchHF = hf.bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)
            if FloatConversion.bfloat16Bits(src[i]) != torchBF { bfMismatch += 1 }
            if FloatConversion.halfBits(src[i]) != torchHF { hfMismatch += 1 }
            if FloatConversion.halfBitsPortable(src[i]) != torchHF { portableMismatch += 1 }
        }
        #expect(src.count > 4000)
        #expect(bfMismatch == 0)
        #expect(hfMismatch == 0)
        #expect(portableMismatch == 0)
    }

    @Test func halfConversionIsExactForAllBitPatterns() throws {
        var bits = [UInt16](repeating: 0, count: 65536)
        for i in 0..<65536 { bits[i] = UInt16(i) }
        var out = [Float](repeating: 0, count: 65536)
        bits.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer { FloatConversion.convert(src.baseAddress!, dtype: .f16, count: 65536, into: $0.baseAddress!) }
        }
        var bad = 0
        for i in 0..<65536 {
            let ref = Float(Float16(bitPattern: UInt16(i)))
            if ref.isNaN {
                if !out[i].isNaN { bad += 1 }
            } else if ref.bitPattern != out[i].bitPattern { bad += 1 }
            // Round trip through the encoders.
            if !ref.isNaN, FloatConversion.halfBitsPortable(ref) != UInt16(i) { bad += 1 }
        }
        #expect(bad == 0)
        // Unaligned source.
        var shifted = [UInt8](repeating: 0, count: 9)
        shifted[1] = 0x00; shifted[2] = 0x3c // 1.0 in f16 at odd address
        shifted[3] = 0x00; shifted[4] = 0xc0 // -2.0
        var two = [Float](repeating: 0, count: 2)
        shifted.withUnsafeBytes { raw in two.withUnsafeMutableBufferPointer { FloatConversion.convert(raw.baseAddress! + 1, dtype: .f16, count: 2, into: $0.baseAddress!) } }
        #expect(two == [1, -2])
    }
}

@Suite struct UnalignedDataTests {
    /// A 3-byte U8 tensor first puts the following F32/F16 data at odd addresses.
    @Test func unalignedFloatTensorsConvertAndFeedKernels() throws {
        let weights: [Float] = [1, 2, 3, -1, 0.5, 4]
        var data: [UInt8] = [7, 8, 9]
        let w32 = weights.withUnsafeBufferPointer { FloatConversion.encode($0, as: .f32) }
        let w16 = weights.withUnsafeBufferPointer { FloatConversion.encode($0, as: .f16) }
        data += w32 + w16
        let header = "{\"pad\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]},"
            + "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[3,27]},"
            + "\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[27,39]}}"
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/u.safetensors"
        try writeBytes(rawSafeTensors(header: header, data: data), p)
        let f = try SafeTensorsFile(path: p)
        let w = try f.stored("w")
        #expect(Int(bitPattern: w.bytes.baseAddress!) % 4 != 0)
        #expect(try w.floats() == weights)
        #expect(try f.floats("h") == weights)
        try w.withFloats { #expect(Array($0) == weights) }
        let x = try Tensor(shape: [1, 3], scalars: [1, 1, 1])
        #expect(try Ops.linear(x, weight: w).scalars == [6, 3.5])
        #expect(try Ops.linear(x, weight: f.stored("h")).scalars == [6, 3.5])
        #expect(try f.stored("pad").bytes.elementsEqual([7, 8, 9]))
    }
}

@Suite struct StoredTensorViewTests {
    @Test func viewKeepsBytesAndChecksElementCount() throws {
        let f = try SafeTensorsFile(path: fixturePath("kernels.safetensors"))
        let w = try f.stored("conv.pointwise.weight")          // [6, 8, 1, 1]
        let lin = try w.viewed(as: [6, 8], key: "as.linear")
        #expect(lin.shape == [6, 8] && lin.key == "as.linear" && lin.dtype == w.dtype)
        #expect(lin.bytes.baseAddress == w.bytes.baseAddress)
        #expect(try lin.floats() == w.floats())
        #expect(try w.viewed(as: [48]).key == w.key)
        #expect(throws: SafeTensorsError.invalidTensor(key: w.key, reason: "cannot view shape [6, 8, 1, 1] as [7, 8]")) {
            _ = try w.viewed(as: [7, 8])
        }
        #expect(throws: SafeTensorsError.self) { _ = try w.viewed(as: [-6, -8]) }
        // A 1x1 convolution equals the linear layer on the viewed weight (per pixel).
        let x = try f.tensor("conv.pointwise.x")                 // [2, 8, 5, 5]
        let conv = try Ops.conv2d(x, weight: w)
        let xs = x.scalars
        var tokens = [Float](repeating: 0, count: 2 * 25 * 8)
        for b in 0..<2 { for c in 0..<8 { for p in 0..<25 { tokens[(b * 25 + p) * 8 + c] = xs[(b * 8 + c) * 25 + p] } } }
        let y = try Ops.linear(Tensor(shape: [50, 8], scalars: tokens), weight: lin).scalars
        let cs = conv.scalars
        var maxErr: Float = 0
        for b in 0..<2 { for o in 0..<6 { for p in 0..<25 { maxErr = max(maxErr, abs(cs[(b * 6 + o) * 25 + p] - y[(b * 25 + p) * 6 + o])) } } }
        #expect(maxErr < 1e-5)
    }
}
