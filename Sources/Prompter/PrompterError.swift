/// Errors from the LLMGA prompter: loading its files, tokenizing, generating, talking to a server.
/// Messages name the file (or endpoint) and what is wrong with it.
public struct PrompterError: Error, CustomStringConvertible, Sendable, Equatable {
    public var source: String?
    public var message: String

    public init(_ message: String, source: String? = nil) {
        self.message = message
        self.source = source
    }

    public var description: String {
        source.map { "\($0): \(message)" } ?? message
    }
}
