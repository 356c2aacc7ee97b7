import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A minimal HTTP/1.1 server on 127.0.0.1 (ephemeral port) for tests of the remote prompter backend (library and CLI). Each connection is
/// served on its own thread: the request is read (honouring `Expect: 100-continue`), recorded, and answered
/// with the next scripted response; every response closes the connection.
public final class TestHTTPServer: @unchecked Sendable {
    /// One recorded request.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Header names lowercased.
        public var headers: [String: String]
        public var body: Data
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    /// What to answer one request with.
    public enum Response: Sendable {
        /// A complete response with `Content-Length`.
        case full(status: Int, headers: [String: String] = [:], body: String)
        /// A chunked `text/event-stream` response: each piece is written as one HTTP chunk, `delay` seconds apart.
        /// With `complete: false` the connection closes after the pieces without the final empty chunk.
        case chunks([Data], delay: Double, complete: Bool = true)
        /// Reads the request and never answers (the connection stays open until the server stops).
        case hang
        /// Reads the request and closes the connection without answering.
        case drop

        public static func events(_ pieces: [String], delay: Double = 0) -> Response {
            .chunks(pieces.map { Data($0.utf8) }, delay: delay)
        }

        public static func json(_ body: String, status: Int = 200, headers: [String: String] = [:]) -> Response {
            .full(status: status, headers: headers.merging(["Content-Type": "application/json"]) { a, _ in a }, body: body)
        }
    }

    public let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var script: [Response]
    private var recorded: [Request] = []
    private var stopped = false
    private var threads = 0
    private var closedAfterCancel = 0

    /// Starts listening; `script` answers requests in order (a request beyond it gets HTTP 500).
    public init(_ script: [Response]) throws {
        self.script = script
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = 0
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { close(fd); throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let t = Thread { [self] in acceptLoop() }
        t.start()
    }

    deinit { stop() }

    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The requests received so far.
    public var requests: [Request] { lock.lock(); defer { lock.unlock() }; return recorded }

    /// How many event-stream responses found the client gone before all chunks were written.
    public var abandonedStreams: Int { lock.lock(); defer { lock.unlock() }; return closedAfterCancel }

    /// Stops accepting, lets hanging connections close, and waits (briefly) for connection threads to end.
    public func stop() {
        lock.lock()
        let first = !stopped
        stopped = true
        lock.unlock()
        guard first else { return }
        for _ in 0..<200 {
            lock.lock(); let n = threads; lock.unlock()
            if n == 0 { break }
            usleep(5_000)
        }
        close(listener)
    }

    private var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }

    /// Waits up to `timeout` seconds for `fd` to be readable; false on timeout or stop.
    private func waitReadable(_ fd: Int32, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !isStopped && Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 20) > 0 { return true }
        }
        return false
    }

    private func acceptLoop() {
        lock.lock(); threads += 1; lock.unlock()
        defer { lock.lock(); threads -= 1; lock.unlock() }
        while true {
            guard waitReadable(listener, timeout: 1e9) else { return }
            let c = accept(listener, nil, nil)
            if c < 0 { continue }
            lock.lock(); threads += 1; lock.unlock()
            let t = Thread { [self] in
                defer { close(c); lock.lock(); threads -= 1; lock.unlock() }
                serve(c)
            }
            t.start()
        }
    }

    private func sendAll(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = send(fd, raw.baseAddress! + off, raw.count - off, Int32(MSG_NOSIGNAL))
                if n <= 0 { return false }
                off += n
            }
            return true
        }
    }

    private func sendAll(_ fd: Int32, _ s: String) -> Bool { sendAll(fd, Data(s.utf8)) }

    /// Reads one request; nil when the client closes first or the server stops.
    private func readRequest(_ fd: Int32) -> Request? {
        var buf = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            guard waitReadable(fd, timeout: 10) else { return false }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { return false }
            buf += chunk[0..<n]
            return true
        }
        let sep: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int? = nil
        while headEnd == nil {
            guard fill() else { return nil }
            if buf.count >= 4 {
                for i in 0...(buf.count - 4) where Array(buf[i..<(i + 4)]) == sep { headEnd = i; break }
            }
        }
        let head = String(decoding: buf[0..<headEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = head[0].split(separator: " ")
        guard parts.count >= 2 else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        if headers["expect"]?.lowercased() == "100-continue", buf.count - headEnd! - 4 < length {
            guard sendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n") else { return nil }
        }
        while buf.count - headEnd! - 4 < length {
            guard fill() else { return nil }
        }
        let body = Data(buf[(headEnd! + 4)..<(headEnd! + 4 + length)])
        return Request(method: String(parts[0]), path: String(parts[1]), headers: headers, body: body)
    }

    private func serve(_ fd: Int32) {
        guard let request = readRequest(fd) else { return }
        lock.lock()
        recorded.append(request)
        let response: Response = script.isEmpty ? .full(status: 500, body: "no scripted response left") : script.removeFirst()
        lock.unlock()
        switch response {
        case .full(let status, let headers, let body):
            var head = "HTTP/1.1 \(status) Status\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n"
            for (k, v) in headers { head += "\(k): \(v)\r\n" }
            _ = sendAll(fd, head + "\r\n" + body)
        case .chunks(let chunks, let delay, let complete):
            guard sendAll(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n") else { return }
            for (i, c) in chunks.enumerated() {
                if i > 0 && delay > 0 {
                    // Wait, noticing the client closing in the meantime.
                    if waitReadable(fd, timeout: delay) {
                        var b: UInt8 = 0
                        if recv(fd, &b, 1, Int32(MSG_PEEK)) <= 0 {
                            lock.lock(); closedAfterCancel += 1; lock.unlock()
                            return
                        }
                    }
                }
                guard sendAll(fd, String(c.count, radix: 16) + "\r\n"), sendAll(fd, c), sendAll(fd, "\r\n") else {
                    lock.lock(); closedAfterCancel += 1; lock.unlock()
                    return
                }
            }
            if !complete { return }
            _ = sendAll(fd, "0\r\n\r\n")
        case .hang:
            while !isStopped {
                if waitReadable(fd, timeout: 0.05) {
                    var b: UInt8 = 0
                    if recv(fd, &b, 1, Int32(MSG_PEEK)) <= 0 { return }   // the client gave up
                    usleep(10_000)
                }
            }
        case .drop:
            return
        }
        // Let the client read everything before the close.
        shutdown(fd, Int32(SHUT_WR))
        _ = waitReadable(fd, timeout: 1)
    }
}
