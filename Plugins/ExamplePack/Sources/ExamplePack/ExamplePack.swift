import Foundation
import NodeKit

/// Upper-cases text and appends exclamation marks.
struct Shout: NodeType {
    static let id = "example.shout"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Upper-case the text and add exclamation marks.",
        inputs: [
            InputSpec("text", .text, doc: "The text to shout."),
            InputSpec("marks", .int, doc: "How many '!' to append.", default: .int(1), range: 0...10),
        ],
        outputs: [OutputSpec("text", .text, doc: "The shouted text.")])

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let text = try inputs.text("text").uppercased() + String(repeating: "!", count: try inputs.int("marks"))
        return Outputs(["text": .text(text)])
    }
}

/// Waits for a while, reporting progress and stopping promptly when the run is cancelled:
/// the pattern every long-running node follows.
struct Delay: NodeType {
    static let id = "example.delay"
    static let version = 1
    static let schema = NodeSchema(
        summary: "Pass text through after a delay, with progress and cancellation.",
        inputs: [
            InputSpec("text", .text, doc: "Passed through unchanged."),
            InputSpec("seconds", .float, doc: "How long to wait.", default: .float(1), range: 0...3600),
        ],
        outputs: [OutputSpec("text", .text)])

    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let steps = max(1, Int(try inputs.float("seconds") * 20))
        for step in 1...steps {
            try context.checkCancellation()
            try await Task.sleep(nanoseconds: 50_000_000)
            context.progress(step, of: steps)
        }
        return Outputs(["text": .text(try inputs.text("text"))])
    }
}

@_cdecl("llmga_pack_entry")
public func llmgaPackEntry(_ hostABI: Int32, _ registry: UnsafeMutableRawPointer) -> Int32 {
    PackEntry.register(hostABI: hostABI, registry: registry,
                       pack: PackInfo(id: "example", version: "1.0.0"), [Shout.self, Delay.self])
}
