/// An error from the Imaging library. `message` says what is wrong and, for files, which file.
public struct ImagingError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        /// The bytes are not a valid file of the format, or are corrupt or truncated.
        case corruptData
        /// A valid file in a layout this library does not read or write.
        case unsupported
        /// An argument out of range (a crop outside the image, a bad bit depth).
        case invalidArgument
        /// Two images that must have the same size (or channel count) do not.
        case sizeMismatch
        /// A file could not be read or written.
        case io
        /// A file declares an image larger than the caller's pixel limit (refused before decoding).
        case tooLarge
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
