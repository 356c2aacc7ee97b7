import NodeKit

struct Echo: NodeType {
    static let id = "otherabi.echo"
    static let version = 1
    static let schema = NodeSchema(summary: "Echo.", inputs: [InputSpec("text", .text)], outputs: [OutputSpec("text", .text)])
    func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        Outputs(["text": .text(try inputs.text("text"))])
    }
}

/// Behaves exactly like a pack compiled against the next NodeKit ABI: it reports that ABI and,
/// since it differs from the host's, registers nothing.
@_cdecl("llmga_pack_entry")
public func llmgaPackEntry(_ hostABI: Int32, _ registry: UnsafeMutableRawPointer) -> Int32 {
    let builtAgainst = NodeKitABI.version + 1
    guard hostABI == builtAgainst else { return builtAgainst }
    return PackEntry.register(hostABI: hostABI, registry: registry, pack: PackInfo(id: "otherabi", version: "1.0.0"), [Echo.self])
}
