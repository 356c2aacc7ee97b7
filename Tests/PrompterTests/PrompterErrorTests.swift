import Testing
@testable import Prompter

@Test func prompterErrorNamesItsSource() {
    #expect(PrompterError("no chat template", source: "models/x/tokenizer_config.json").description
            == "models/x/tokenizer_config.json: no chat template")
}
