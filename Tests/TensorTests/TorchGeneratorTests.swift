import Testing
@testable import Tensor

/// Bit-exact agreement with torch.randn / torch.rand (fixtures from tools/tensor/make_fixtures.py).
@Suite struct TorchGeneratorTests {
    static let shapes: [[Int]] = [[1, 4, 64, 64], [2, 4, 8, 8], [7], [15], [16], [17], [3, 5, 7]]
    static let seeds: [UInt64] = [0, 42, (1 << 32) + 5]

    static func key(_ seed: UInt64, _ shape: [Int], _ draw: Int) -> String {
        "randn.seed\(seed).\(shape.map(String.init).joined(separator: "x")).draw\(draw)"
    }

    /// Number of elements whose bits differ.
    static func bitMismatches(_ a: Tensor, _ b: [Float]) -> Int {
        zip(a.scalars, b).filter { $0.0.bitPattern != $0.1.bitPattern }.count + abs(a.count - b.count)
    }

    @Test(arguments: seeds)
    func randnMatchesTorchBitForBit(seed: UInt64) throws {
        let f = try SafeTensorsFile(path: fixturePath("rng.safetensors"))
        for shape in Self.shapes {
            var g = TorchGenerator(seed: seed)
            for draw in 0..<2 {
                let x = try g.randn(shape)
                #expect(x.shape == shape)
                let ref = try f.stored(Self.key(seed, shape, draw))
                #expect(ref.shape == shape)
                #expect(Self.bitMismatches(x, try ref.floats()) == 0, "seed \(seed) shape \(shape) draw \(draw)")
            }
        }
    }

    @Test(arguments: seeds)
    func randMatchesTorch(seed: UInt64) throws {
        let f = try SafeTensorsFile(path: fixturePath("rng.safetensors"))
        var g = TorchGenerator(seed: seed)
        #expect(Self.bitMismatches(try g.rand([3, 7]), try f.floats("rand.seed\(seed).draw0")) == 0)
        #expect(Self.bitMismatches(try g.rand([40]), try f.floats("rand.seed\(seed).draw1")) == 0)
    }

    /// One generator used for a mix of small (cached Box–Muller) and large randn calls and rand.
    @Test func mixedSequenceContinuesTheStreamLikeTorch() throws {
        let f = try SafeTensorsFile(path: fixturePath("rng.safetensors"))
        let ops: [(Bool, [Int])] = [(true, [3]), (true, [20]), (true, [1]), (false, [5]), (true, [15]),
                                    (true, [33]), (false, [2, 9]), (true, [2]), (true, [1, 4, 8, 8])]
        var g = TorchGenerator(seed: 7)
        for (i, (normal, shape)) in ops.enumerated() {
            let x = normal ? try g.randn(shape) : try g.rand(shape)
            #expect(Self.bitMismatches(x, try f.floats("sequence.seed7.\(i)")) == 0, "step \(i)")
        }
    }

    /// The scalar transform calls libm's logf/sinf/cosf; the fixture was made with glibc's.
    #if os(Linux)
    @Test func scalarTransformMatchesTorchDefaultCapability() throws {
        let f = try SafeTensorsFile(path: fixturePath("rng_scalar.safetensors"))
        for seed: UInt64 in [0, 42] {
            for shape in [[1, 4, 64, 64], [2, 4, 8, 8], [17], [33]] {
                var g = TorchGenerator(seed: seed, normalTransform: .scalar)
                for draw in 0..<2 {
                    let x = try g.randn(shape)
                    #expect(Self.bitMismatches(x, try f.floats(Self.key(seed, shape, draw))) == 0, "seed \(seed) \(shape) \(draw)")
                }
            }
        }
        // The two transforms really differ (so each test checks its own path).
        var a = TorchGenerator(seed: 0), b = TorchGenerator(seed: 0, normalTransform: .scalar)
        #expect(try a.randn([1, 4, 64, 64]).scalars != b.randn([1, 4, 64, 64]).scalars)
    }
    #endif

    @Test func manualSeedResetsStreamAndCache() throws {
        var g = TorchGenerator(seed: 42)
        let first = try g.randn([3])     // leaves a cached normal
        _ = try g.randn([1000])
        g.manualSeed(42)
        #expect(try g.randn([3]).scalars == first.scalars)
        #expect(g.seed == 42)
        // Seeds are taken modulo 2^32 like torch's mt19937.
        var a = TorchGenerator(seed: 5), b = TorchGenerator(seed: (1 << 32) + 5)
        #expect(a.nextUInt32() == b.nextUInt32())
    }

    @Test func mt19937ReferenceValues() {
        // std::mt19937 with seed 5489: the 10000th output is 4123659995 (C++ standard requirement).
        var g = TorchGenerator(seed: 5489)
        var v: UInt32 = 0
        for _ in 0..<10000 { v = g.nextUInt32() }
        #expect(v == 4_123_659_995)
    }

    @Test func emptyAndInvalidShapes() throws {
        var g = TorchGenerator(seed: 0)
        #expect(try g.randn([0, 3]).count == 0)
        #expect(throws: TensorError.self) { _ = try g.randn([-1]) }
    }
}
