import Foundation

/// SplitMix64 (Steele, Lea, Flood 2014): a 64-bit state advanced by 0x9E3779B97F4A7C15 and mixed by two
/// xor-shift-multiply rounds. Small, fast, and fully determined by the seed; it does not reproduce torch's stream.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform Double in [0, 1) from the top 53 bits.
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// Picks the next token from logits as transformers' sampling does: temperature 0 is greedy (the first index of
/// the largest logit, like `argmax`); otherwise logits are divided by the temperature, top-p keeps the smallest
/// set of most probable tokens whose probability reaches `topP` (TopPLogitsWarper: a token is dropped when the
/// probability of the tokens more likely than it already reaches `topP`; the most likely token always stays),
/// and one token is drawn from the renormalised distribution with a `SplitMix64` stream seeded by `seed`.
public struct TokenSampler: Sendable {
    public let temperature: Float
    public let topP: Float
    public private(set) var random: SplitMix64

    /// Validates the options (`GenerationOptions.validate`).
    public init(options: GenerationOptions) throws {
        try options.validate()
        temperature = options.temperature
        topP = options.topP
        random = SplitMix64(seed: options.seed)
    }

    /// The index of the first largest value (NaN never wins).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in logits.enumerated() where v > bestValue {
            best = i
            bestValue = v
        }
        return best
    }

    /// The tokens top-p keeps and their renormalised probabilities, most likely first (after temperature).
    /// With temperature 0 this is the argmax alone with probability 1.
    public func candidates(_ logits: UnsafeBufferPointer<Float>) -> [(token: Int, probability: Double)] {
        guard temperature > 0, logits.count > 0 else { return [(Self.argmax(logits), 1)] }
        let t = Double(temperature)
        var mx = -Double.infinity
        for v in logits where !v.isNaN { mx = max(mx, Double(v) / t) }
        // Probabilities before top-p: softmax of logits / temperature (in Double).
        var weights = [Double](repeating: 0, count: logits.count)
        var total = 0.0
        for (i, v) in logits.enumerated() {
            let w = v.isNaN ? 0 : Foundation.exp(Double(v) / t - mx)
            weights[i] = w
            total += w
        }
        var kept: [(Int, Double)] = []
        if topP >= 1 {
            for i in 0..<logits.count where weights[i] > 0 { kept.append((i, weights[i])) }
            kept.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        } else {
            var order = (0..<Int32(logits.count)).map { $0 }
            order.sort { weights[Int($0)] > weights[Int($1)] || (weights[Int($0)] == weights[Int($1)] && $0 < $1) }
            var before = 0.0
            let p = Double(topP) * total
            for o in order {
                let w = weights[Int(o)]
                if !kept.isEmpty && (before >= p || w == 0) { break }
                kept.append((Int(o), w))
                before += w
            }
        }
        let sum = kept.reduce(0) { $0 + $1.1 }
        return kept.map { (token: $0.0, probability: $0.1 / sum) }
    }

    /// `candidates` of a logits array.
    public func candidates(_ logits: [Float]) -> [(token: Int, probability: Double)] {
        logits.withUnsafeBufferPointer { candidates($0) }
    }

    /// Draws the next token.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        guard temperature > 0 else { return Self.argmax(logits) }
        let c = candidates(logits)
        let u = random.nextUnit()
        var acc = 0.0
        for (token, p) in c {
            acc += p
            if u < acc { return token }
        }
        return c[c.count - 1].token
    }

    /// Draws the next token from a logits array.
    public mutating func sample(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { sample($0) }
    }
}
