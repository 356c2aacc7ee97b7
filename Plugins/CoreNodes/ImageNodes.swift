import Foundation
import Imaging
import NodeKit

/// `image.load`: reads a PNG or TIFF file (recognised by content).
public struct ImageLoad: NodeType {
    public static let id = "image.load"
    public static let version = 1
    public static let purity = Purity.readsFiles
    public static let schema = NodeSchema(
        summary: "Load a PNG or TIFF image; its alpha becomes a mask (1 - alpha).",
        inputs: [
            InputSpec("path", .text, doc: "Image file to read (PNG or TIFF, recognised by content); relative paths resolve against the directory llmga runs in.",
                      role: .inputFile),
        ],
        outputs: [
            OutputSpec("image", .image, doc: "The image as RGB (gray is repeated into three channels; alpha is split off)."),
            OutputSpec("mask", .mask, doc: "1 - alpha, as ComfyUI: transparent pixels are selected. All zeros if the file has no alpha."),
            OutputSpec("width", .int, doc: "Width in pixels."),
            OutputSpec("height", .int, doc: "Height in pixels."),
        ])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let path = try inputs.text("path")
        let url = context.resolvePath(path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw NodeError("file not found: \(url.path)", port: "path")
        }
        let loaded = try imaging(port: "path") { try ImageFile.read(contentsOf: url) }
        let img = loaded.image
        let depth = Raster.SampleDepth(loaded.depth)
        return Outputs([
            "image": imageValue(img.rgb(), depth: depth),
            "mask": maskValue(img.maskFromAlpha(), depth: depth),
            "width": .int(img.width),
            "height": .int(img.height),
        ])
    }
}

/// `image.save`: writes a PNG (with provenance metadata) or TIFF, atomically.
public struct ImageSave: NodeType {
    public static let id = "image.save"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Save an image as PNG (with the workflow and params in iTXt chunks) or TIFF, atomically.",
        inputs: [
            InputSpec("image", .image, doc: "The image to save (1-4 channels)."),
            InputSpec("path", .text, doc: "Output file; missing folders are created. Relative paths resolve against the directory llmga runs in.",
                      role: .outputFile),
            InputSpec("format", .text, doc: "File format; 'auto' picks it from the extension (.png, .tif, .tiff).",
                      default: .text("auto"), choices: ["auto", "png", "tiff"]),
            InputSpec("bit-depth", .text,
                      doc: "Bits per sample; 'auto' follows the image's source precision (8, 16, or 32-bit float, which only TIFF stores; float images become 16-bit PNG).",
                      default: .text("auto"), choices: ["auto", "8", "16", "32"]),
        ],
        outputs: [OutputSpec("path", .text, doc: "The absolute path written.")],
        isSink: true)

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let raster = try inputs.image("image")
        guard raster.width > 0, raster.height > 0 else {
            throw NodeError("empty image (\(raster.width)x\(raster.height))", port: "image")
        }
        let url = context.resolvePath(try inputs.text("path")).standardizedFileURL
        let formatChoice = try inputs.text("format")
        let format: ImageFormat
        switch formatChoice {
        case "png": format = .png
        case "tiff": format = .tiff
        default:
            guard let f = ImageFormat(pathExtension: url.pathExtension) else {
                throw NodeError("cannot tell the format from '\(url.lastPathComponent)': use a .png, .tif or .tiff extension or set format",
                                port: "path")
            }
            format = f
        }
        let depth: SampleDepth
        switch try inputs.text("bit-depth") {
        case "8": depth = .uint8
        case "16": depth = .uint16
        case "32":
            guard format == .tiff else {
                throw NodeError("32-bit float samples can only be saved as TIFF, not PNG", port: "bit-depth")
            }
            depth = .float32
        case "auto":
            switch raster.depth {
            case .uint8: depth = .uint8
            case .uint16: depth = .uint16
            case .float32: depth = format == .tiff ? .float32 : .uint16
            }
        case let other:
            throw NodeError("unknown bit depth '\(other)' (auto, 8, 16 or 32)", port: "bit-depth")
        }
        let text = format == .png ? try Self.metadata(context.runInfo) : []
        let data = try imaging(port: "image") {
            try ImageFile.encode(Image(raster), format: format, depth: depth, text: text)
        }
        try context.checkCancellation()
        // Temporary file in the destination folder, flushed, renamed into place; a cancellation
        // (checked just before the rename) or any error removes the temporary file.
        do {
            try AtomicFile.write(to: url) { tmp in
                guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
                    throw NodeError("cannot create a file in \(tmp.deletingLastPathComponent().path)", port: "path")
                }
                let handle = try FileHandle(forWritingTo: tmp)
                defer { try? handle.close() }
                try handle.write(contentsOf: data)
                try handle.synchronize()
                try context.checkCancellation()
            }
        } catch let e as NodeError {
            throw e
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw NodeError("cannot write \(url.path): \(error.localizedDescription)", port: "path")
        }
        return Outputs(["path": .text(url.path)], writtenFiles: [url.path])
    }

    /// The provenance chunks of a PNG written by llmga.
    static func metadata(_ info: RunInfo) throws -> [TextChunk] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let params = String(decoding: try encoder.encode(info.params), as: UTF8.self)
        let nodes = String(decoding: try encoder.encode(info.nodeVersions), as: UTF8.self)
        return [
            ("llmga:workflow", info.workflowSource),
            ("llmga:params", params),
            ("llmga:nodes", nodes),
            ("llmga:engine", info.engineVersion),
        ]
    }
}

/// `image.resize`
public struct ImageResize: NodeType {
    public static let id = "image.resize"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Resize an image with Pillow-compatible filters (antialiased when shrinking).",
        inputs: [
            InputSpec("image", .image, doc: "The image to resize."),
            InputSpec("width", .int, doc: "New width in pixels; 0 keeps the aspect ratio from height (or uses scale).",
                      default: .int(0), range: 0...16384),
            InputSpec("height", .int, doc: "New height in pixels; 0 keeps the aspect ratio from width (or uses scale).",
                      default: .int(0), range: 0...16384),
            InputSpec("scale", .float, doc: "Scale factor used when width and height are both 0 (new size = round(size * scale)).",
                      default: .float(0), range: 0...64),
            InputSpec("filter", .text, doc: "Resampling filter, as Pillow's Image.resize.",
                      default: .text("lanczos"), choices: ResizeFilter.allCases.map(\.rawValue)),
        ],
        outputs: [OutputSpec("image", .image, doc: "The resized image.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (img, depth) = try inputs.imagingImage("image")
        var w = try inputs.int("width"), h = try inputs.int("height")
        let scale = try inputs.float("scale")
        guard let filter = ResizeFilter(rawValue: try inputs.text("filter")) else {
            throw NodeError("unknown filter '\(try inputs.text("filter"))'", port: "filter")
        }
        guard w >= 0 else { throw NodeError("width must not be negative", port: "width") }
        guard h >= 0 else { throw NodeError("height must not be negative", port: "height") }
        if w == 0 && h == 0 {
            guard scale > 0 else {
                throw NodeError("give width, height or a scale above 0", port: "width")
            }
            w = Int((Double(img.width) * scale).rounded())
            h = Int((Double(img.height) * scale).rounded())
        } else if w == 0 {
            w = Int((Double(img.width) * Double(h) / Double(img.height)).rounded())
        } else if h == 0 {
            h = Int((Double(img.height) * Double(w) / Double(img.width)).rounded())
        }
        w = max(w, 1)
        h = max(h, 1)
        guard w <= 16384, h <= 16384 else {
            throw NodeError("resulting size \(w)x\(h) is larger than 16384 pixels per side", port: w > 16384 ? "width" : "height")
        }
        let out = try imaging(port: "image") { try img.resized(width: w, height: h, filter: filter) }
        return Outputs(["image": imageValue(out, depth: depth)])
    }
}

/// `image.crop`
public struct ImageCrop: NodeType {
    public static let id = "image.crop"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Cut a rectangle out of an image.",
        inputs: [
            InputSpec("image", .image, doc: "The image to crop."),
            InputSpec("x", .int, doc: "Left edge of the rectangle, in pixels from the left.", default: .int(0), range: 0...65536),
            InputSpec("y", .int, doc: "Top edge of the rectangle, in pixels from the top.", default: .int(0), range: 0...65536),
            InputSpec("width", .int, doc: "Width of the rectangle; it must fit inside the image.", range: 1...65536),
            InputSpec("height", .int, doc: "Height of the rectangle; it must fit inside the image.", range: 1...65536),
        ],
        outputs: [OutputSpec("image", .image, doc: "The cropped image.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (img, depth) = try inputs.imagingImage("image")
        let x = try inputs.int("x"), y = try inputs.int("y")
        let w = try inputs.int("width"), h = try inputs.int("height")
        let size = "the image is \(img.width)x\(img.height)"
        guard x >= 0, x < img.width else { throw NodeError("x = \(x) is outside the image (\(size))", port: "x") }
        guard y >= 0, y < img.height else { throw NodeError("y = \(y) is outside the image (\(size))", port: "y") }
        guard w >= 1, x + w <= img.width else {
            throw NodeError("x + width = \(x + w) exceeds the image width (\(size))", port: "width")
        }
        guard h >= 1, y + h <= img.height else {
            throw NodeError("y + height = \(y + h) exceeds the image height (\(size))", port: "height")
        }
        let out = try imaging(port: "image") { try img.cropped(x: x, y: y, width: w, height: h) }
        return Outputs(["image": imageValue(out, depth: depth)])
    }
}

/// `image.pad-for-outpaint`
public struct ImagePadForOutpaint: NodeType {
    public static let id = "image.pad-for-outpaint"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Grow the canvas for outpainting; the mask selects the new area.",
        inputs: [
            InputSpec("image", .image, doc: "The image to extend."),
            InputSpec("left", .int, doc: "Pixels to add on the left.", default: .int(0), range: 0...8192),
            InputSpec("top", .int, doc: "Pixels to add at the top.", default: .int(0), range: 0...8192),
            InputSpec("right", .int, doc: "Pixels to add on the right.", default: .int(0), range: 0...8192),
            InputSpec("bottom", .int, doc: "Pixels to add at the bottom.", default: .int(0), range: 0...8192),
            InputSpec("fill", .text, doc: "How to fill the new area: repeat the edge pixels, or a constant colour.",
                      default: .text("edge"), choices: ["edge", "color"]),
            InputSpec("color", .text, doc: "Fill colour when fill is 'color': #rgb or #rrggbb.", default: .text("#808080")),
            InputSpec("feather", .int,
                      doc: "Pixels over which the mask ramps down into the kept image along the padded sides ((feather - d) / feather)^2; 0 = hard edge.",
                      default: .int(0), range: 0...4096),
        ],
        outputs: [
            OutputSpec("image", .image, doc: "The image on the larger canvas."),
            OutputSpec("mask", .mask, doc: "1 on the new area, 0 on the kept image (ramped near the seam with feather)."),
        ])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (img, depth) = try inputs.imagingImage("image")
        var sides: [Int] = []
        for side in ["left", "top", "right", "bottom"] {
            let v = try inputs.int(side)
            guard v >= 0 else { throw NodeError("padding must not be negative, got \(v)", port: side) }
            sides.append(v)
        }
        let fillChoice = try inputs.text("fill")
        let fill: PadFill
        switch fillChoice {
        case "edge": fill = .edge
        case "color":
            var c = try parseHexColor(try inputs.text("color"), port: "color")
            if c.count == 4 { c.removeLast() }
            fill = .constant(img.channels == 1 || img.channels == 2 ? [0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]] : c)
        default: throw NodeError("unknown fill '\(fillChoice)' (edge or color)", port: "fill")
        }
        let feather = try inputs.int("feather")
        guard feather >= 0 else { throw NodeError("feather must not be negative", port: "feather") }
        let (out, mask) = try imaging(port: "image") {
            try img.paddedForOutpaint(left: sides[0], top: sides[1], right: sides[2], bottom: sides[3], fill: fill,
                                      feather: feather)
        }
        return Outputs(["image": imageValue(out, depth: depth), "mask": maskValue(mask)])
    }
}

/// `image.composite`
public struct ImageComposite: NodeType {
    public static let id = "image.composite"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Blend an overlay onto a base image through a mask: base * (1 - mask) + overlay * mask.",
        inputs: [
            InputSpec("base", .image, doc: "The image underneath."),
            InputSpec("overlay", .image, doc: "The image on top; same size as base (converted to base's channels)."),
            InputSpec("mask", .mask, doc: "Where the overlay shows (1) and where the base stays (0); same size as base."),
        ],
        outputs: [OutputSpec("image", .image, doc: "The blended image.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (base, d1) = try inputs.imagingImage("base")
        let (overlay, d2) = try inputs.imagingImage("overlay")
        let (mask, _) = try inputs.imagingMask("mask")
        guard overlay.width == base.width, overlay.height == base.height else {
            throw NodeError("overlay is \(overlay.width)x\(overlay.height) but base is \(base.width)x\(base.height)", port: "overlay")
        }
        guard mask.width == base.width, mask.height == base.height else {
            throw NodeError("mask is \(mask.width)x\(mask.height) but base is \(base.width)x\(base.height)", port: "mask")
        }
        let out = try imaging(port: "base") { try Image.composite(base: base, overlay: overlay, mask: mask) }
        return Outputs(["image": imageValue(out, depth: d1.widened(d2))])
    }
}

/// `image.canny`
public struct ImageCanny: NodeType {
    public static let id = "image.canny"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Canny edge detection, identical to OpenCV's cv2.Canny on the 8-bit gray image (the ControlNet canny preprocessor).",
        inputs: [
            InputSpec("image", .image, doc: "The image; it is converted to 8-bit gray as OpenCV does."),
            InputSpec("low", .float, doc: "Lower hysteresis threshold on the gradient magnitude (pixels above it join edges that touch a strong one).",
                      default: .float(100), range: 0...10000),
            InputSpec("high", .float, doc: "Upper threshold: pixels above it start edges.", default: .float(200), range: 0...10000),
            InputSpec("blur-sigma", .float, doc: "Gaussian blur applied first, in pixels (0 = none).", default: .float(0), range: 0...100),
            InputSpec("l2-gradient", .bool, doc: "Use the L2 gradient magnitude sqrt(gx² + gy²) instead of |gx| + |gy|.",
                      default: .bool(false)),
        ],
        outputs: [
            OutputSpec("edges", .image, doc: "White edges on black, 3 channels (the ControlNet conditioning image)."),
            OutputSpec("mask", .mask, doc: "The edges as a mask (1 on edges)."),
        ])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (img, _) = try inputs.imagingImage("image")
        let low = try inputs.float("low"), high = try inputs.float("high")
        guard low.isFinite, low >= 0 else { throw NodeError("low must be a number >= 0", port: "low") }
        guard high.isFinite, high >= 0 else { throw NodeError("high must be a number >= 0", port: "high") }
        let sigma = try inputs.float("blur-sigma")
        guard sigma.isFinite, sigma >= 0 else { throw NodeError("blur-sigma must be a number >= 0", port: "blur-sigma") }
        let edges = try imaging(port: "image") {
            try img.canny(low: low, high: high, l2Gradient: try inputs.bool("l2-gradient"), blurSigma: sigma)
        }
        return Outputs(["edges": imageValue(edges.rgb(), depth: .uint8), "mask": maskValue(edges)])
    }
}

/// `image.blur`
public struct ImageBlur: NodeType {
    public static let id = "image.blur"
    public static let version = 1
    public static let schema = NodeSchema(
        summary: "Gaussian blur (as OpenCV GaussianBlur with ksize 0: radius about 3 sigma, reflected borders).",
        inputs: [
            InputSpec("image", .image, doc: "The image to blur."),
            InputSpec("sigma", .float, doc: "Standard deviation in pixels (0 = unchanged).", default: .float(2), range: 0...200),
        ],
        outputs: [OutputSpec("image", .image, doc: "The blurred image.")])

    public init() {}

    public func evaluate(_ inputs: Inputs, _ context: any NodeContext) async throws -> Outputs {
        let (img, depth) = try inputs.imagingImage("image")
        let sigma = try inputs.float("sigma")
        let out = try imaging(port: "sigma") { try img.gaussianBlurred(sigma: sigma) }
        return Outputs(["image": imageValue(out, depth: depth)])
    }
}
