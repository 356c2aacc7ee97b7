import Imaging
import NodeKit

/// `mask.threshold`
public struct MaskThreshold: NodeType {
    public static let id = "mask.threshold"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Binarise a mask: 1 where it is above the level, else 0.",
        inputs: [
            InputSpec("mask", .mask, doc: "The mask."),
            InputSpec("level", .float, doc: "Values strictly above this become 1.", default: .float(0.5), range: 0...1),
        ],
        outputs: [OutputSpec("mask", .mask, doc: "The binary mask.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (m, _) = try inputs.imagingMask("mask")
        return Outputs(["mask": maskValue(m.thresholded(Float(try inputs.float("level"))))])
    }
}

/// `mask.invert`
public struct MaskInvert: NodeType {
    public static let id = "mask.invert"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "1 - mask.",
        inputs: [InputSpec("mask", .mask, doc: "The mask to invert.")],
        outputs: [OutputSpec("mask", .mask, doc: "The inverted mask.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (m, depth) = try inputs.imagingMask("mask")
        return Outputs(["mask": maskValue(m.inverted(), depth: depth)])
    }
}

/// `mask.grow`
public struct MaskGrow: NodeType {
    public static let id = "mask.grow"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Grow (dilate) or shrink (erode) a mask by a radius, with a round brush.",
        inputs: [
            InputSpec("mask", .mask, doc: "The mask."),
            InputSpec("radius", .int, doc: "Pixels to grow by; negative values shrink.", default: .int(4), range: -1024...1024),
        ],
        outputs: [OutputSpec("mask", .mask, doc: "The grown or shrunk mask.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (m, depth) = try inputs.imagingMask("mask")
        let out = try imaging(port: "radius") { try m.grown(by: try inputs.int("radius")) }
        return Outputs(["mask": maskValue(out, depth: depth)])
    }
}

/// `mask.blur`
public struct MaskBlur: NodeType {
    public static let id = "mask.blur"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Soften a mask's edges with a Gaussian blur.",
        inputs: [
            InputSpec("mask", .mask, doc: "The mask."),
            InputSpec("sigma", .float, doc: "Standard deviation in pixels (0 = unchanged).", default: .float(4), range: 0...200),
        ],
        outputs: [OutputSpec("mask", .mask, doc: "The blurred mask.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (m, depth) = try inputs.imagingMask("mask")
        let out = try imaging(port: "sigma") { try m.gaussianBlurred(sigma: try inputs.float("sigma")) }
        return Outputs(["mask": maskValue(out, depth: depth)])
    }
}

/// `mask.from-image`
public struct MaskFromImage: NodeType {
    public static let id = "mask.from-image"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Make a mask from one channel of an image (white = selected).",
        inputs: [
            InputSpec("image", .image, doc: "The image, e.g. a painted black-and-white mask."),
            InputSpec("channel", .text,
                      doc: "Which channel: luminance (0.299 R + 0.587 G + 0.114 B), red, green, blue (gray images use their gray), or alpha.",
                      default: .text("luminance"), choices: ["luminance", "red", "green", "blue", "alpha"]),
        ],
        outputs: [OutputSpec("mask", .mask, doc: "The mask.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (img, depth) = try inputs.imagingImage("image")
        let channel = try inputs.text("channel")
        let mask: Image
        switch channel {
        case "luminance":
            mask = img.luminanceMask()
        case "red", "green", "blue":
            let index = img.colorChannels == 1 ? 0 : ["red": 0, "green": 1, "blue": 2][channel]!
            mask = try imaging(port: "channel") { try img.channel(index) }
        case "alpha":
            guard let a = img.alpha else {
                throw NodeError("the image has no alpha channel (\(img.channels) channels)", port: "channel")
            }
            mask = a
        default:
            throw NodeError("unknown channel '\(channel)'", port: "channel")
        }
        return Outputs(["mask": maskValue(mask, depth: depth)])
    }
}
