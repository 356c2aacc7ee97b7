extension StoredTensor {
    /// The same bytes viewed with another shape of the same element count (e.g. a [C, C, 1, 1]
    /// convolution weight viewed as a [C, C] linear weight), under another key.
    public func viewed(as newShape: [Int], key newKey: String? = nil) throws(SafeTensorsError) -> StoredTensor {
        guard newShape.allSatisfy({ $0 >= 0 }), newShape.reduce(1, *) == elementCount else {
            throw .invalidTensor(key: key, reason: "cannot view shape \(shape) as \(newShape)")
        }
        return StoredTensor(key: newKey ?? key, dtype: dtype, shape: newShape, bytes: bytes, source: source, owner: owner)
    }
}
