import Testing
@testable import Diffusion

@Test func errorNamesTheFile() {
    #expect(DiffusionError("missing key 'conv_in.weight'", file: "unet/model.safetensors").description
            == "unet/model.safetensors: missing key 'conv_in.weight'")
    #expect(DiffusionError("bad config").description == "bad config")
}
