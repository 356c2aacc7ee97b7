import Dispatch
import Foundation

/// A value that is moved into a concurrent closure although the compiler cannot prove it
/// safe (raw pointers into disjoint regions of a buffer). Every use must write only to
/// the region owned by its iteration.
public struct UnsafeSendableBox<T>: @unchecked Sendable {
    public let value: T
    @inlinable public init(_ value: T) { self.value = value }
}

/// Element-wise and row-wise work is split over this many workers.
/// Defaults to the number of active processors (2 on the project's machines).
public enum Parallel {
    nonisolated(unsafe) public static var workerCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

    /// Calls `body` on disjoint sub-ranges covering `0..<count`, concurrently when the
    /// work is large enough. `minPerChunk` is the smallest range worth a thread.
    @inlinable
    public static func forRanges(_ count: Int, minPerChunk: Int = 4096,
                                 _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let workers = workerCount
        let chunks = min(workers, max(1, count / max(1, minPerChunk)))
        if chunks <= 1 {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { escapable in
            let box = UnsafeSendableBox(escapable)
            DispatchQueue.concurrentPerform(iterations: chunks) { c in
                let lo = count * c / chunks
                let hi = count * (c + 1) / chunks
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}
