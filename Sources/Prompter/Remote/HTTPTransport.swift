import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// One HTTP exchange whose response arrives as events (head, then body pieces as the server sends them), for
/// `OpenAIChatBackend`.
///
/// Why URLSession with a delegate: on Linux, Foundation's `URLSession` (FoundationNetworking, built on libcurl)
/// handles http and https, proxies from the environment, chunked transfer and connection reuse, and was checked
/// here to deliver Server-Sent Events piece by piece as they arrive through `urlSession(_:dataTask:didReceive:)`.
/// The async conveniences `bytes(for:)` do not exist in swift-corelibs-foundation, so a delegate feeds an
/// `AsyncThrowingStream` that the caller reads (and calls its progress callback from, in its own task).
/// Two corelibs shortcomings are worked around:
/// - `URLRequest.timeoutInterval` below one second fires at once (it is truncated to whole seconds), so the
///   idle timeout is a watchdog timer of our own; the request's own timeout is set well above it as a backstop.
/// - There is no structured cancellation, so `cancel()` (wired to task cancellation by the caller) cancels the
///   data task and ends the stream with `CancellationError`.
/// Adding async-http-client (SwiftNIO) would cost minutes of build time for no gain here.
/// Run time: FoundationNetworking links libcurl (Debian package `libcurl4`).
final class HTTPCall: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    enum Event: Sendable {
        case head(status: Int, headers: [String: String])
        case body(Data)
    }

    /// Why an exchange failed before a complete response.
    enum Failure: Error, Equatable {
        /// No bytes from the server for `idleTimeout` seconds.
        case timedOut
        /// Connecting or talking to the server failed (refused, unknown host, dropped connection, TLS...).
        case connection(String)
    }

    private let lock = NSLock()
    private let request: URLRequest
    private let idleTimeout: Double
    private var session: URLSession?
    private var task: URLSessionDataTask?
    private var continuation: AsyncThrowingStream<Event, Error>.Continuation?
    private var timer: DispatchSourceTimer?
    private var finished = false
    private let timerQueue = DispatchQueue(label: "llmga.prompter.http-watchdog")

    /// `idleTimeout`: seconds to wait for the connection, the response head and each further piece of body.
    init(request: URLRequest, idleTimeout: Double) {
        var r = request
        r.timeoutInterval = (idleTimeout * 2 + 5).rounded(.up)   // backstop only; the watchdog fires first
        self.request = r
        self.idleTimeout = idleTimeout
    }

    /// Starts the exchange. Events end with the body's last piece; errors are `Failure` or `CancellationError`.
    func start() -> AsyncThrowingStream<Event, Error> {
        let (stream, continuation) = AsyncThrowingStream<Event, Error>.makeStream()
        let config = URLSessionConfiguration.ephemeral
        config.urlCache = nil
        config.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: config, delegate: self, delegateQueue: nil)
        let task = session.dataTask(with: request)
        let timer = DispatchSource.makeTimerSource(queue: timerQueue)
        timer.setEventHandler { [weak self] in self?.finish(.failure(Failure.timedOut)) }
        lock.lock()
        self.session = session
        self.task = task
        self.continuation = continuation
        self.timer = timer
        lock.unlock()
        continuation.onTermination = { [weak self] termination in
            if case .cancelled = termination { self?.finish(.failure(CancellationError())) }
        }
        touch()
        timer.resume()
        task.resume()
        return stream
    }

    /// Stops the exchange (no-op once it has ended); the stream ends with `CancellationError`.
    func cancel() { finish(.failure(CancellationError())) }

    /// Re-arms the idle watchdog.
    private func touch() {
        lock.lock(); defer { lock.unlock() }
        guard !finished else { return }
        timer?.schedule(deadline: .now() + idleTimeout)
    }

    private func yield(_ event: Event) {
        lock.lock()
        let c = finished ? nil : continuation
        lock.unlock()
        c?.yield(event)
    }

    private func finish(_ result: Result<Void, Error>) {
        lock.lock()
        guard !finished else { lock.unlock(); return }
        finished = true
        let c = continuation, t = task, s = session, w = timer
        continuation = nil; task = nil; session = nil; timer = nil
        lock.unlock()
        w?.cancel()
        if case .failure = result { t?.cancel() }
        s?.finishTasksAndInvalidate()   // breaks the session → delegate retain cycle
        switch result {
        case .success: c?.finish()
        case .failure(let e): c?.finish(throwing: e)
        }
    }

    // MARK: URLSessionDataDelegate

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        touch()
        if let http = response as? HTTPURLResponse {
            var headers: [String: String] = [:]
            for (k, v) in http.allHeaderFields {
                if let k = k as? String, let v = v as? String { headers[k.lowercased()] = v }
            }
            yield(.head(status: http.statusCode, headers: headers))
            completionHandler(.allow)
        } else {
            completionHandler(.cancel)
            finish(.failure(Failure.connection("the answer is not an HTTP response")))
        }
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        touch()
        yield(.body(data))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        guard let error else { finish(.success(())); return }
        let ns = error as NSError
        if ns.domain == NSURLErrorDomain {
            switch ns.code {
            case NSURLErrorCancelled: finish(.failure(CancellationError())); return
            case NSURLErrorTimedOut: finish(.failure(Failure.timedOut)); return
            default: break
            }
        }
        finish(.failure(Failure.connection(Self.describe(ns))))
    }

    /// A readable reason from a URLSession error (corelibs puts libcurl's text in the underlying error).
    static func describe(_ e: NSError) -> String {
        if let s = e.userInfo[NSLocalizedDescriptionKey] as? String, !s.isEmpty, s != "(null)" { return s }
        if let u = e.userInfo[NSUnderlyingErrorKey] as? NSError { return describe(u) }
        switch e.code {
        case NSURLErrorCannotConnectToHost: return "connection refused"
        case NSURLErrorCannotFindHost, NSURLErrorDNSLookupFailed: return "unknown host"
        case NSURLErrorNetworkConnectionLost: return "the connection was lost"
        case NSURLErrorNotConnectedToInternet: return "no network"
        case NSURLErrorSecureConnectionFailed, NSURLErrorServerCertificateUntrusted,
             NSURLErrorServerCertificateHasBadDate, NSURLErrorServerCertificateNotYetValid,
             NSURLErrorServerCertificateHasUnknownRoot: return "TLS failure"
        default: return "\(e.domain) error \(e.code)"
        }
    }
}
