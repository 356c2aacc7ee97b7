import Testing
@testable import Tensor

@Suite struct TensorTypeTests {
    @Test func constructionAndShapeChecks() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(t.count == 6 && t.rank == 2)
        #expect(try t.dim(-1) == 3)
        #expect(throws: TensorError.self) { _ = try t.dim(2) }
        #expect(throws: TensorError("shape [2, 2] needs 4 elements but 3 were given")) {
            _ = try Tensor(shape: [2, 2], scalars: [1, 2, 3])
        }
        #expect(throws: TensorError.self) { _ = try Tensor(zeros: [2, -1]) }
        #expect(throws: TensorError.self) { _ = try Tensor(zeros: [Int.max, 3]) }
        #expect(try Tensor(zeros: [4]).scalars == [0, 0, 0, 0])
        #expect(try Tensor(shape: [2], repeating: 7).scalars == [7, 7])
        #expect(try Tensor(zeros: []).count == 1)
        let storage = try Tensor(zeros: [3, 5]).storage
        #expect(Int(bitPattern: storage.pointer) % 64 == 0)
    }

    @Test func reshapeSharesStorageAndWritesCopy() throws {
        let t = try Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        var r = try t.reshaped([3, -1])
        #expect(r.shape == [3, 2])
        #expect(r.storage === t.storage)
        #expect(throws: TensorError.self) { _ = try t.reshaped([4, -1]) }
        #expect(throws: TensorError.self) { _ = try t.reshaped([-1, -1]) }
        #expect(throws: TensorError.self) { _ = try t.reshaped([7]) }
        r.withUnsafeMutableBufferPointer { $0[0] = 100 }
        #expect(t.scalars[0] == 1)      // copy on write
        #expect(r.scalars[0] == 100)
        #expect(r.storage !== t.storage)
    }

    @Test func sliceFirstDimension() throws {
        let t = try Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        let s = try t.slice(first: 1..<3)
        #expect(s.shape == [2, 2] && s.scalars == [3, 4, 5, 6])
        #expect(throws: TensorError.self) { _ = try t.slice(first: 2..<4) }
    }
}
