/// Errors from loading and running diffusion models. Messages name the file and, where there is
/// one, the tensor key or config field, so a user can tell which file is wrong and how.
public struct DiffusionError: Error, CustomStringConvertible, Sendable, Equatable {
    public var file: String?
    public var message: String

    public init(_ message: String, file: String? = nil) {
        self.message = message
        self.file = file
    }

    public var description: String {
        file.map { "\($0): \(message)" } ?? message
    }
}
