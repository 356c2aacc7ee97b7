import Foundation

/// OpenAI's CLIP BPE vocabulary (`vocab.json`, `merges.txt`; MIT licence), shipped with llmga so
/// single-file checkpoints, which carry no tokenizer, can be used. See Resources/clip/README.md.
public enum BundledCLIPVocabulary {
    /// The bundled files, or nil if the resource bundle is missing from this installation.
    public static var files: (vocab: URL, merges: URL)? {
        guard let dir = Bundle.module.url(forResource: "clip", withExtension: nil) else { return nil }
        let vocab = dir.appendingPathComponent("vocab.json"), merges = dir.appendingPathComponent("merges.txt")
        guard FileManager.default.fileExists(atPath: vocab.path), FileManager.default.fileExists(atPath: merges.path) else { return nil }
        return (vocab, merges)
    }

    /// The folder holding the bundled `vocab.json` and `merges.txt`, or nil if missing from this installation.
    public static var folder: URL? { files?.vocab.deletingLastPathComponent() }
}
