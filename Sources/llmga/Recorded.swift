import Foundation
import Imaging
import Workflow

/// The workflow and params recorded in a PNG by `image.save`.
struct RecordedWorkflow {
    var source: String
    /// The recorded params as `--set name=value` arguments.
    var sets: [String]

    /// Nil when `path` is not a PNG; throws a `WorkflowError` when it is a PNG without a recorded workflow.
    init?(png path: String) throws(WorkflowError) {
        guard let h = FileHandle(forReadingAtPath: path) else { return nil }
        let magic = (try? h.read(upToCount: 8)) ?? Data()
        try? h.close()
        guard magic == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { return nil }
        let loc = SourceLocation(file: path, line: 0, column: 0)
        let png: PNGImage
        do {
            png = try PNG.read(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw WorkflowError([Diagnostic(.error, .fileUnreadable, "cannot read the PNG: \(error)", at: loc)])
        }
        guard let source = png.text("llmga:workflow") else {
            throw WorkflowError([Diagnostic(.error, .badDocument, "this PNG records no workflow (no llmga:workflow text chunk); only images saved by llmga's image.save can be re-run", at: loc)])
        }
        self.source = source
        var sets: [String] = []
        if let p = png.text("llmga:params"), let obj = try? JSONSerialization.jsonObject(with: Data(p.utf8)) as? [String: String] {
            sets = obj.keys.sorted().map { "\($0)=\(obj[$0]!)" }
        }
        self.sets = sets
    }
}
