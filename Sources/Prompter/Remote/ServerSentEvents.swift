import Foundation

/// Incremental Server-Sent Events parser (the `text/event-stream` format of streaming chat completions).
/// Bytes go in as they arrive; complete events come out. Lines end in LF, CRLF or CR; `data:` lines of one
/// event are joined with LF; comment lines (`:`) and other fields (`event:`, `id:`, `retry:`) are ignored;
/// a blank line ends an event. Lines are split on bytes, so a UTF-8 character cut between network reads is
/// reassembled before decoding.
struct ServerSentEventParser {
    private var buffer: [UInt8] = []
    private var data: [String] = []
    private var hasData = false
    private var lastWasCR = false

    /// Feeds bytes; returns the `data` of every event completed by them, in order.
    mutating func feed<S: Sequence>(_ bytes: S) -> [String] where S.Element == UInt8 {
        var events: [String] = []
        for b in bytes {
            if b == 0x0A && lastWasCR { lastWasCR = false; continue }   // LF of a CRLF
            lastWasCR = b == 0x0D
            if b == 0x0A || b == 0x0D {
                if let e = line(buffer) { events.append(e) }
                buffer.removeAll(keepingCapacity: true)
            } else {
                buffer.append(b)
            }
        }
        return events
    }

    /// Ends the stream: an event not yet closed by a blank line is returned (servers that close right after
    /// the last `data:` line).
    mutating func finish() -> String? {
        if !buffer.isEmpty { _ = line(buffer); buffer.removeAll() }
        return dispatch()
    }

    private mutating func line(_ bytes: [UInt8]) -> String? {
        if bytes.isEmpty { return dispatch() }
        if bytes[0] == UInt8(ascii: ":") { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        let field: Substring, value: Substring
        if let colon = text.firstIndex(of: ":") {
            field = text[..<colon]
            var v = text[text.index(after: colon)...]
            if v.first == " " { v = v.dropFirst() }
            value = v
        } else {
            field = text[...]; value = ""
        }
        if field == "data" { data.append(String(value)); hasData = true }
        return nil
    }

    private mutating func dispatch() -> String? {
        guard hasData else { return nil }
        defer { data = []; hasData = false }
        return data.joined(separator: "\n")
    }
}
