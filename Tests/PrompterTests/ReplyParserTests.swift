import Testing
@testable import Prompter

@Suite struct ReplyParserTests {
    let stops = ChatFamily.llavaV1.stopStrings

    @Test func singleBlockAndHistoryWithoutEOS() {
        let r = ReplyParser.parse("<gen_image> A red fox in snow. </gen_image></s></s>", stopStrings: stops)
        #expect(r.generation == .prompts(["A red fox in snow."]))
        #expect(r.text == "")
        #expect(r.historyText == "<gen_image> A red fox in snow. </gen_image>")
    }

    @Test func noBlockIsExplicit() {
        let r = ReplyParser.parse("  The image shows a dog on a beach.</s>", stopStrings: stops)
        #expect(r.generation == .noGenerationPrompt)
        #expect(r.prompts.isEmpty)
        #expect(r.text == "The image shows a dog on a beach.")
        #expect(r.historyText == "The image shows a dog on a beach.")
    }

    @Test func storyModeKeepsEveryBlockInOrderAndTheProse() {
        let raw = "Once upon a time.\n<gen_image> A castle\n at dawn </gen_image>\nThen night fell.\n\n\n<gen_img>A castle at night</gen_img> The end."
        let r = ReplyParser.parse(raw, stopStrings: [])
        #expect(r.prompts == ["A castle at dawn", "A castle at night"])
        #expect(r.text == "Once upon a time.\n\nThen night fell.\n\nThe end.")
    }

    @Test func missingClosingTagRunsToTheEnd() {
        let r = ReplyParser.parse("Sure! <gen_image> a cat wearing a hat, studio light", stopStrings: stops)
        #expect(r.prompts == ["a cat wearing a hat, studio light"])
        #expect(r.text == "Sure!")
    }

    @Test func closingTagOnlyTakesTheTextBefore() {
        // LLMGA's "only end" case: caption[:id2]
        let r = ReplyParser.parse("a lighthouse in a storm </gen_image>", stopStrings: stops)
        #expect(r.prompts == ["a lighthouse in a storm"])
    }

    @Test func duplicatedNestedTagsAndCase() {
        #expect(ReplyParser.parse("<gen_image> <gen_image> A fox </gen_image></gen_image>", stopStrings: []).prompts == ["A fox"])
        #expect(ReplyParser.parse("<GEN_IMAGE>A fox</Gen_Image>", stopStrings: []).prompts == ["A fox"])
        #expect(ReplyParser.parse("<gen_image>   </gen_image>", stopStrings: []).generation == .noGenerationPrompt)
    }

    @Test func labelsAndQuotesAreRemoved() {
        #expect(ReplyParser.parse("<gen_image> Prompt: a red fox </gen_image>", stopStrings: []).prompts == ["a red fox"])
        #expect(ReplyParser.parse("<gen_image>Generation prompt - \"a red fox\"</gen_image>", stopStrings: []).prompts == ["a red fox"])
        #expect(ReplyParser.parse("<gen_image>Prompter robots in a lab</gen_image>", stopStrings: []).prompts == ["Prompter robots in a lab"])
    }

    @Test func stopStringsEndTheReply() {
        let r = ReplyParser.parse("<gen_image> a dog </gen_image><|im_end|><|im_start|>user\n<gen_image>junk</gen_image>",
                                  stopStrings: ChatFamily.qwen2.stopStrings)
        #expect(r.prompts == ["a dog"])
        #expect(r.historyText == "<gen_image> a dog </gen_image>")
        let g = ReplyParser.parse("<gen_image> a dog </gen_image><end_of_turn>\n<eos>", stopStrings: ChatFamily.gemma.stopStrings)
        #expect(g.historyText == "<gen_image> a dog </gen_image>")
    }

    @Test func historyRoundTrip() throws {
        var conv = Conversation(family: .qwen2, messages: [.user("Generate a similar image.", image: true)])
        let reply = conv.parseReply("<gen_image> A red fox in snow. </gen_image><|im_end|>")
        conv.appendReply(reply)
        conv.messages.append(.user("Make it night."))
        #expect(try conv.render().contains("<|im_start|>assistant\n<gen_image> A red fox in snow. </gen_image><|im_end|><|im_start|>user\nMake it night.<|im_end|>"))
    }
}

@Suite struct TaskTests {
    @Test func phrasings() throws {
        #expect(try PrompterTask.textToImage(keywords: " a cat on a sofa ").userTurns() == [.user("a cat on a sofa Generate this image based on given keywords.")])
        #expect(try PrompterTask.similarImage().userTurns() == [.user("Generate a similar image.", image: true)])
        #expect(try PrompterTask.similarImage().userTurns()[0].content == "<image>\nGenerate a similar image.")
        #expect(try PrompterTask.inpaint().userTurns() == [.user("Inpaint this image.", image: true)])
        #expect(try PrompterTask.outpaint().userTurns() == [.user("Extend this image.", image: true)])
        #expect(try PrompterTask.describeImage.userTurns() == [.user("Describe the image.", image: true)])
        #expect(try PrompterTask.expand(text: "a castle").userTurns() == [.user("a castle Please provide a detailed description.")])
        #expect(try PrompterTask.chat(text: "hello").userTurns() == [.user("hello")])
        #expect(try PrompterTask.edit(instruction: "make it snowy").userTurns()
                == [.user("Generate a similar image", image: true), .user("make it snowy")])
        #expect(throws: PrompterError.self) { try PrompterTask.edit(instruction: "  ").userTurns() }
        #expect(throws: PrompterError.self) { try PrompterTask.textToImage(keywords: "").userTurns() }
        #expect(PrompterTask.inpaint().needsImage && !PrompterTask.textToImage(keywords: "x").needsImage)
    }

    @Test func editIsTwoTurnsThroughTheTemplate() throws {
        let turns = try PrompterTask.edit(instruction: "Make it night.").userTurns()
        var conv = Conversation(family: .llavaV1, messages: [turns[0]])
        let first = conv.parseReply("<gen_image> A red fox in snow. </gen_image></s>")
        conv.appendReply(first)
        conv.messages.append(turns[1])
        #expect(try conv.render() == "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions. USER: <image>\nGenerate a similar image ASSISTANT: <gen_image> A red fox in snow. </gen_image></s>USER: Make it night. ASSISTANT:")
        let second = conv.parseReply("<gen_image> A red fox in snow at night. </gen_image></s>")
        let p = try PrompterTask.editPrompts(first: first, second: second)
        #expect(p.source == "A red fox in snow." && p.target == "A red fox in snow at night.")
        #expect(throws: PrompterError.self) { try PrompterTask.editPrompts(first: first, second: conv.parseReply("I cannot.")) }
    }
}
