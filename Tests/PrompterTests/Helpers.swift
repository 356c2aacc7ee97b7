import Foundation
import Testing
@testable import Prompter

/// Absolute path of a file or folder under Tests/PrompterTests/Fixtures.
func fixturePath(_ name: String) -> String {
    guard let base = Bundle.module.resourcePath else { fatalError("test bundle has no resource path") }
    return base + "/Fixtures/" + name
}

struct TokenizerCases: Decodable {
    struct Case: Decodable {
        var text: String
        var ids: [Int]
        var ids_with_special: [Int]
        var ids_special_as_text: [Int]?
        var decoded: String?
        var decoded_skip_special: String?
        var auto_decoded: String?
        var sp_ids: [Int]?
        var sp_decoded: String?
        var slow_ids_with_special: [Int]?
        var auto_decoded_skip_special: String?
    }
    struct ImagePrompt: Decodable { var prompt: String; var ids: [Int] }
    var cases: [Case]
    var image_prompts: [ImagePrompt]
    var bos_token_id: Int?
    var eos_token_id: Int?
    var pad_token_id: Int?
}

func loadCases(_ folder: String) throws -> TokenizerCases {
    let data = try Data(contentsOf: URL(fileURLWithPath: fixturePath("tokenizers/\(folder)/cases.json")))
    return try JSONDecoder().decode(TokenizerCases.self, from: data)
}

func loadFixtureTokenizer(_ folder: String) throws -> LoadedTokenizer {
    try TokenizerLoader.load(folder: fixturePath("tokenizers/\(folder)"))
}

/// Short printable form of a test string for failure messages.
func show(_ s: String) -> String {
    let d = s.debugDescription
    return d.count > 80 ? String(d.prefix(80)) + "…" : d
}
