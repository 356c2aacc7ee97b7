import Foundation
import Imaging

/// Pixel statistics on pictures of the miniature world (tools/mini/world.py): each pixel is labelled with its
/// nearest palette colour, and a region is judged by the fraction of its pixels with a given label
/// (tools/mini/check_sd.py measures the same in Python).
enum MiniWorld {
    /// The world's palette (world.py PALETTE), in order.
    static let palette: [(name: String, rgb: [Float])] = [
        ("red", [220, 40, 40]), ("orange", [245, 140, 30]), ("yellow", [240, 220, 50]), ("green", [40, 170, 70]),
        ("blue", [40, 80, 220]), ("purple", [140, 60, 190]), ("white", [245, 245, 245]), ("black", [25, 25, 25]),
    ]

    /// The name of the palette colour nearest to pixel (x, y).
    static func label(_ image: Image, _ x: Int, _ y: Int) -> String {
        let i = (y * image.width + x) * image.channels
        let px = (0..<3).map { image.pixels[i + (image.channels < 3 ? 0 : $0)] * 255 }
        var best = 0, bestD = Float.infinity
        for (k, c) in palette.enumerated() {
            let d = zip(px, c.rgb).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
            if d < bestD { bestD = d; best = k }
        }
        return palette[best].name
    }

    /// The labels of the pixels where `inside` holds, counted.
    static func histogram(_ image: Image, where inside: (Int, Int) -> Bool) -> [String: Int] {
        var counts: [String: Int] = [:]
        for y in 0..<image.height { for x in 0..<image.width where inside(x, y) { counts[label(image, x, y), default: 0] += 1 } }
        return counts
    }

    /// Fraction of the region's pixels labelled `colour`.
    static func fraction(_ image: Image, _ colour: String, where inside: (Int, Int) -> Bool) -> Double {
        precondition(palette.contains { $0.name == colour }, "not a palette colour: \(colour)")
        let h = histogram(image, where: inside)
        let total = h.values.reduce(0, +)
        return total == 0 ? 0 : Double(h[colour, default: 0]) / Double(total)
    }

    /// The middle 12×12 of a 64×64 picture and its outer 6-pixel ring (check_sd.py's regions).
    static func centre(_ x: Int, _ y: Int) -> Bool { (26..<38).contains(x) && (26..<38).contains(y) }
    static func border(_ x: Int, _ y: Int) -> Bool { x < 6 || y < 6 || x >= 58 || y >= 58 }
}
