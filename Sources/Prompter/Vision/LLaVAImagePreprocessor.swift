import Foundation
import Imaging
import Tensor

/// How a non-square picture is made square before CLIP preprocessing.
public enum LLaVAAspectMode: String, Sendable, CaseIterable {
    /// LLMGA's CLIs: `image.resize((max(w,h), max(w,h)), Image.ANTIALIAS)` — a non-uniform squash.
    /// `ANTIALIAS` was Pillow's alias of LANCZOS (removed in Pillow 10), so this resamples with LANCZOS.
    case squash
    /// LLaVA's `expand2square`: paste the picture centred on a square filled with the mean colour
    /// (`int(mean * 255)` per channel) — `image_aspect_ratio: "pad"`.
    case pad
    /// Nothing: CLIP's own shortest-edge resize and center crop (LLaVA's default branch).
    case none

    /// The mode for a LLaVA `image_aspect_ratio` value: "pad" → pad; "resizesquare" (LLMGA) → squash;
    /// anything else (absent, "square", "anyres"…) → none.
    public init(imageAspectRatio: String?) {
        switch imageAspectRatio {
        case "pad": self = .pad
        case "resizesquare": self = .squash
        default: self = .none
        }
    }
}

/// LLaVA / LLMGA image preprocessing, equal to the PIL-based ("slow") `CLIPImageProcessor` of
/// transformers (`CLIPImageProcessorPil` in transformers 5) that LLaVA uses:
/// the picture is held as 8-bit RGB (as PIL holds it), made square per `mode`, resized so its
/// shortest edge is `shortestEdge` (Pillow resampling in 8-bit fixed point, bicubic by default),
/// center-cropped to `cropHeight`×`cropWidth`, rescaled by 1/255 and normalised with `mean`/`std`
/// (float32 arithmetic as numpy does it). The torchvision ("fast") processor resizes differently
/// and is not the reference.
public struct LLaVAImagePreprocessor: Sendable, Equatable {
    /// The resize target: the shortest edge, or an exact size.
    public enum ResizeTarget: Sendable, Equatable {
        case shortestEdge(Int)
        case exact(height: Int, width: Int)
    }

    public var mode: LLaVAAspectMode
    /// nil = no resize (`do_resize: false`).
    public var resize: ResizeTarget?
    public var resample: PillowFilter
    /// A height and width in pixels.
    public struct PixelSize: Sendable, Equatable {
        public var height: Int
        public var width: Int
        public init(height: Int, width: Int) { self.height = height; self.width = width }
    }

    /// nil = no crop (`do_center_crop: false`).
    public var crop: PixelSize?
    /// nil = no rescale.
    public var rescaleFactor: Double?
    /// nil = no normalisation.
    public var mean: [Double]?
    public var std: [Double]?

    /// OpenAI CLIP's normalisation constants.
    public static let clipMean = [0.48145466, 0.4578275, 0.40821073]
    public static let clipStd = [0.26862954, 0.26130258, 0.27577711]

    /// The processor of `openai/clip-vit-large-patch14-336` (size and crop 336, bicubic, CLIP mean/std)
    /// with LLMGA's squash.
    public static let llmga336 = LLaVAImagePreprocessor(mode: .squash, imageSize: 336)

    /// CLIP's processor for a tower of `imageSize` (shortest edge and crop `imageSize`, bicubic, 1/255, CLIP mean/std).
    public init(mode: LLaVAAspectMode = .squash, imageSize: Int) {
        self.mode = mode
        resize = .shortestEdge(imageSize)
        resample = .bicubic
        crop = PixelSize(height: imageSize, width: imageSize)
        rescaleFactor = 1.0 / 255.0
        mean = Self.clipMean
        std = Self.clipStd
    }

    /// Every field given.
    public init(mode: LLaVAAspectMode, resize: ResizeTarget?, resample: PillowFilter, crop: PixelSize?,
                rescaleFactor: Double?, mean: [Double]?, std: [Double]?) {
        self.mode = mode
        self.resize = resize
        self.resample = resample
        self.crop = crop
        self.rescaleFactor = rescaleFactor
        self.mean = mean
        self.std = std
    }

    /// Reads a transformers `preprocessor_config.json` (`size` as `{"shortest_edge": n}`,
    /// `{"height": h, "width": w}` or a bare int meaning the shortest edge; `crop_size` as
    /// `{"height", "width"}` or an int; `resample`, `image_mean`, `image_std`, `rescale_factor`,
    /// `do_resize`, `do_center_crop`, `do_rescale`, `do_normalize`). Absent fields take
    /// `CLIPImageProcessor`'s defaults (224, bicubic, CLIP mean/std).
    public init(path: String, mode: LLaVAAspectMode = .squash) throws {
        let o = try VisionJSON.object(path)
        func fail(_ key: String, _ why: String) -> PrompterError {
            PrompterError("preprocessor field \"\(key)\" \(why)", source: path)
        }
        func positive(_ key: String, _ v: Any) throws -> Int {
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), i > 0 else {
                throw fail(key, "must be a positive integer, got \(v)")
            }
            return i
        }
        func size(_ key: String, _ v: Any) throws -> (Int?, Int?, Int?) {  // (shortest, height, width)
            if v is NSNumber { return (try positive(key, v), nil, nil) }
            guard let d = v as? [String: Any] else { throw fail(key, "must be an integer or an object, got \(v)") }
            if let s = d["shortest_edge"] { return (try positive(key + ".shortest_edge", s), nil, nil) }
            guard let h = d["height"], let w = d["width"] else {
                throw fail(key, "needs \"shortest_edge\" or \"height\" and \"width\", got \(Array(d.keys).sorted())")
            }
            return (nil, try positive(key + ".height", h), try positive(key + ".width", w))
        }
        func flag(_ key: String) throws -> Bool {
            guard let v = o[key] else { return true }
            guard let b = v as? Bool else { throw fail(key, "must be true or false, got \(v)") }
            return b
        }
        func triple(_ key: String, _ fallback: [Double]) throws -> [Double] {
            guard let v = o[key] else { return fallback }
            if let n = v as? NSNumber { return [Double](repeating: n.doubleValue, count: 3) }
            guard let a = v as? [Any], a.count == 3, let d = a.map({ ($0 as? NSNumber)?.doubleValue }) as? [Double] else {
                throw fail(key, "must be a number or 3 numbers, got \(v)")
            }
            return d
        }
        self.mode = mode
        if try flag("do_resize") {
            switch try size("size", o["size"] ?? ["shortest_edge": 224]) {
            case let (s?, _, _): resize = .shortestEdge(s)
            case let (nil, h?, w?): resize = .exact(height: h, width: w)
            default: resize = nil
            }
        } else {
            resize = nil
        }
        if let v = o["resample"] {
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue), let f = PillowFilter(rawValue: i) else {
                throw fail("resample", "must be a PIL resampling number 0...5, got \(v)")
            }
            resample = f
        } else {
            resample = .bicubic
        }
        if try flag("do_center_crop") {
            switch try size("crop_size", o["crop_size"] ?? 224) {
            case let (s?, _, _): crop = PixelSize(height: s, width: s)
            case let (nil, h?, w?): crop = PixelSize(height: h, width: w)
            default: crop = nil
            }
        } else {
            crop = nil
        }
        if try flag("do_rescale") {
            if let v = o["rescale_factor"] {
                guard let n = v as? NSNumber, n.doubleValue > 0 else { throw fail("rescale_factor", "must be a positive number, got \(v)") }
                rescaleFactor = n.doubleValue
            } else {
                rescaleFactor = 1.0 / 255.0
            }
        } else {
            rescaleFactor = nil
        }
        if try flag("do_normalize") {
            mean = try triple("image_mean", Self.clipMean)
            std = try triple("image_std", Self.clipStd)
            if std!.contains(where: { $0 == 0 }) { throw fail("image_std", "must not contain 0") }
        } else {
            mean = nil
            std = nil
        }
    }

    /// The pixel values for one picture: [3, height, width] (channel-first, as CLIP's `pixel_values[0]`).
    /// Gray is repeated into RGB and alpha dropped (PIL's `convert("RGB")`); samples are first quantised
    /// to 8 bits (`round(v * 255)`), as PIL holds them.
    public func pixelValues(_ image: Image) throws -> Tensor {
        guard image.width > 0, image.height > 0, (1...4).contains(image.channels) else {
            throw PrompterError("image preprocessing: invalid image \(image.width)x\(image.height)x\(image.channels)")
        }
        let rgb = image.rgb()
        var bm = Bitmap8(width: rgb.width, height: rgb.height, channels: 3, bytes: rgb.quantized8())
        bm = try square(bm)
        return try process(bm)
    }

    /// `mode` applied to an 8-bit RGB picture.
    func square(_ bm: Bitmap8) throws -> Bitmap8 {
        let (w, h) = (bm.width, bm.height)
        guard w != h else { return bm }
        let m = max(w, h)
        switch mode {
        case .none:
            return bm
        case .squash:
            return PillowResample.resize(bm, width: m, height: m, filter: .lanczos)
        case .pad:
            let fill = (mean ?? Self.clipMean).map { UInt8(clamping: Int($0 * 255)) }
            var out = Bitmap8(width: m, height: m, channels: 3, fill: fill)
            let (ox, oy) = w > h ? (0, (w - h) / 2) : ((h - w) / 2, 0)
            for y in 0..<h {
                let s = y * w * 3, d = ((y + oy) * m + ox) * 3
                out.bytes.replaceSubrange(d..<(d + w * 3), with: bm.bytes[s..<(s + w * 3)])
            }
            return out
        }
    }

    /// Resize, crop, rescale, normalise (the CLIP processor proper).
    func process(_ input: Bitmap8) throws -> Tensor {
        var bm = input
        if let resize {
            let (nh, nw): (Int, Int)
            switch resize {
            case .exact(let h, let w): (nh, nw) = (h, w)
            case .shortestEdge(let s):
                // transformers' get_resize_output_image_size(default_to_square=False): the long side is
                // int(size * long / short) (float division, truncated).
                let (w, h) = (bm.width, bm.height)
                let short = min(w, h), long = max(w, h)
                let newLong = Int(Double(s) * Double(long) / Double(short))
                (nh, nw) = w <= h ? (newLong, s) : (s, newLong)
            }
            bm = PillowResample.resize(bm, width: nw, height: nh, filter: resample)
        }
        if let c = crop { bm = Self.centerCrop(bm, height: c.height, width: c.width) }
        let (w, h) = (bm.width, bm.height)
        let meanF = mean.map { $0.map { Float($0) } }, stdF = std.map { $0.map { Float($0) } }
        let scale = rescaleFactor
        return try Tensor(shape: [3, h, w]) { out in
            for c in 0..<3 {
                for i in 0..<(w * h) {
                    let b = bm.bytes[i * 3 + c]
                    // numpy: float32(float64(uint8) * scale), then (x - mean32) / std32 in float32.
                    var v = scale.map { Float(Double(b) * $0) } ?? Float(b)
                    if let meanF, let stdF { v = (v - meanF[c]) / stdF[c] }
                    out[c * w * h + i] = v
                }
            }
        }
    }

    /// transformers' `center_crop`: top = (H - h) // 2, left = (W - w) // 2; a picture smaller than
    /// the crop is first padded with zeros (ceil of half the shortfall before).
    static func centerCrop(_ bm: Bitmap8, height ch: Int, width cw: Int) -> Bitmap8 {
        let (h, w) = (bm.height, bm.width)
        if h == ch, w == cw { return bm }
        var top = (h - ch) >= 0 ? (h - ch) / 2 : -((ch - h + 1) / 2)  // Python floor division
        var left = (w - cw) >= 0 ? (w - cw) / 2 : -((cw - w + 1) / 2)
        if top < 0 || left < 0 || top + ch > h || left + cw > w {
            let nh = max(ch, h), nw = max(cw, w)
            let tp = (nh - h + 1) / 2, lp = (nw - w + 1) / 2
            var padded = Bitmap8(width: nw, height: nh, channels: 3, fill: [0, 0, 0])
            for y in 0..<h {
                let s = y * w * 3, d = ((y + tp) * nw + lp) * 3
                padded.bytes.replaceSubrange(d..<(d + w * 3), with: bm.bytes[s..<(s + w * 3)])
            }
            top += tp
            left += lp
            // transformers then slices [max(0, top) : min(nh, top + ch)], likewise for columns.
            let t0 = max(0, top), t1 = min(nh, top + ch), l0 = max(0, left), l1 = min(nw, left + cw)
            return crop(padded, x: l0, y: t0, width: l1 - l0, height: t1 - t0)
        }
        return crop(bm, x: left, y: top, width: cw, height: ch)
    }

    static func crop(_ bm: Bitmap8, x: Int, y: Int, width: Int, height: Int) -> Bitmap8 {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for r in 0..<height {
            let s = ((y + r) * bm.width + x) * 3
            out.replaceSubrange((r * width * 3)..<((r + 1) * width * 3), with: bm.bytes[s..<(s + width * 3)])
        }
        return Bitmap8(width: width, height: height, channels: 3, bytes: out)
    }
}

/// Reading the JSON files of model folders (errors name the file).
enum VisionJSON {
    static func object(_ path: String) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw PrompterError("cannot read file: \(error.localizedDescription)", source: path)
        }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PrompterError("not a JSON object", source: path)
        }
        return o
    }
}
