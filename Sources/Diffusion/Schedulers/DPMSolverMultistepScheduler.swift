import Foundation
import Tensor

/// diffusers `DPMSolverMultistepScheduler` with `algorithm_type` "dpmsolver++" (Lu et al. 2022):
/// DPM-Solver++ 2M is `solver_order` 2 (the default), solver type "midpoint" (or "heun"),
/// `lower_order_final`; orders 1 and 3 are supported too. Karras sigmas give "DPM++ 2M Karras"
/// (timesteps rounded to integers). No input scaling; `init_noise_sigma` 1.
///
/// Class defaults: `timestep_spacing` "linspace", `final_sigmas_type` "zero", `solver_order` 2,
/// `lower_order_final` true, `euler_at_final` false, `lambda_min_clipped` −∞.
/// Not supported (rejected with an error): the SDE and non-++ algorithm types, learned variance,
/// thresholding, Lu lambdas, exponential/beta/flow sigmas.
public struct DPMSolverMultistepScheduler: Scheduler {
    public let config: SchedulerConfig
    public let className = "DPMSolverMultistepScheduler"
    public let trainingSchedule: TrainingSchedule
    public let solverOrder: Int
    public let useKarrasSigmas: Bool
    public let heun: Bool
    public let lowerOrderFinal: Bool
    public let eulerAtFinal: Bool
    public let finalSigmasType: SchedulerConfig.FinalSigmasType
    public let predictionType: SchedulerConfig.PredictionType

    public private(set) var numInferenceSteps = 0
    public private(set) var timesteps: [Float] = []
    public private(set) var fullSigmas: [Float] = []
    public var sigmas: [Float]? { fullSigmas }
    public var initNoiseSigma: Float { 1 }
    public var isStochastic: Bool { false }

    private var fullTimestepCount = 0
    private var beginIndex = 0
    private var nextIndex = 0
    /// Data predictions of the last `solverOrder` steps, oldest first.
    private var modelOutputs: [Tensor] = []
    private var lowerOrderNums = 0

    /// `useKarrasSigmas` overrides the config's `use_karras_sigmas` when given.
    public init(config: SchedulerConfig, useKarrasSigmas: Bool? = nil) throws(DiffusionError) {
        let algorithm = config.algorithmType ?? .dpmsolverPlusPlus
        guard algorithm == .dpmsolverPlusPlus || algorithm == .deis else {
            throw config.error("algorithm_type", "\"\(algorithm.rawValue)\" is not supported (only \"dpmsolver++\")")
        }
        let order = config.solverOrder ?? 2
        guard (1...3).contains(order) else { throw config.error("solver_order", "must be 1, 2 or 3, got \(order)") }
        if config.thresholding == true { throw config.error("thresholding", "dynamic thresholding is not supported") }
        if let v = config.varianceType, v == "learned" || v == "learned_range" {
            throw config.error("variance_type", "learned variance (\"\(v)\") is not supported")
        }
        for (flag, name) in [(config.useLuLambdas, "use_lu_lambdas"), (config.useExponentialSigmas, "use_exponential_sigmas"),
                             (config.useBetaSigmas, "use_beta_sigmas"), (config.useFlowSigmas, "use_flow_sigmas"),
                             (config.useDynamicShifting, "use_dynamic_shifting")] where flag == true {
            throw config.error(name, "is not supported")
        }
        self.config = config
        solverOrder = order
        self.useKarrasSigmas = useKarrasSigmas ?? config.useKarrasSigmas ?? false
        heun = config.solverType == .heun          // logrho/bh1/bh2 map to midpoint, as in diffusers
        lowerOrderFinal = config.lowerOrderFinal ?? true
        eulerAtFinal = config.eulerAtFinal ?? false
        finalSigmasType = config.finalSigmasType ?? .zero
        predictionType = config.resolvedPredictionType
        let rescale = config.rescaleBetasZeroSNR ?? false
        var s = try TrainingSchedule(config: config, rescaleZeroSNR: rescale)
        if rescale { s = s.pinningLastAlphaCumprod(Float(1.0 / 16_777_216.0)) }
        trainingSchedule = s
    }

    public mutating func setTimesteps(steps: Int, strength: Double) throws(DiffusionError) {
        let train = trainingSchedule.count
        try SchedulerSupport.validateSteps(steps, strength: strength, trainSteps: train, className: className)
        // last_timestep = T − searchsorted(flip(λ_t), lambda_min_clipped)
        let clip = config.lambdaMinClipped ?? -Double.infinity
        let lambdas = trainingSchedule.alphasCumprod.map { a -> Float in log(a.squareRoot()) - log((1 - a).squareRoot()) }
        let clipped = lambdas.reversed().filter { Double($0) < clip }.count
        let last = train - clipped
        guard last >= 2 else { throw config.error("lambda_min_clipped", "\(clip) clips away the whole schedule") }

        let spacing = config.timestepSpacing ?? .linspace
        var ts = Timesteps.dpm(spacing, train: train, last: last, steps: steps, offset: config.resolvedStepsOffset)
        guard ts.count == steps, ts.allSatisfy({ $0 >= 0 && $0 < train }) else {
            throw config.error("timestep_spacing", "\"\(spacing.rawValue)\" with steps_offset \(config.resolvedStepsOffset) and \(steps) steps gives timesteps outside 0..<\(train); choose another step count")
        }
        let trainSigmas = trainingSchedule.sigmas
        var sig: [Double]
        if useKarrasSigmas {
            // diffusers' DPM config has no sigma_min/sigma_max: the ramp spans the training σ range.
            sig = karrasSigmas(sigmaMin: Double(trainSigmas[0]), sigmaMax: Double(trainSigmas[train - 1]), count: steps)
            let logs = float32Logs(trainSigmas)
            let roundT = config.resolvedBetaSchedule != .squaredcosCapV2
            ts = sig.map { s in
                let t = sigmaToT(s, logSigmas: logs)
                return Int(roundT ? NumPy.round(t) : t)   // .astype(int64) truncates
            }
        } else {
            sig = ts.map { NumPy.interpIndex(Double($0), trainSigmas) }
        }
        let lastSigma: Float = finalSigmasType == .zero ? 0 : trainSigmas[0]
        let begin = try SchedulerSupport.beginIndex(steps: steps, strength: strength, className: className)
        numInferenceSteps = steps
        fullSigmas = sig.map { Float($0) } + [lastSigma]
        fullTimestepCount = ts.count
        beginIndex = begin
        timesteps = ts[begin...].map { Float($0) }
        reset()
    }

    public mutating func reset() {
        nextIndex = 0
        modelOutputs = []
        lowerOrderNums = 0
    }

    public func scaleModelInput(_ sample: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        return sample
    }

    /// (α_t, σ_t) of the VP process for a σ: α = 1/sqrt(σ²+1), σ_t = σ·α (float32 like torch).
    @inline(__always)
    private static func alphaSigma(_ sigma: Float) -> (alpha: Float, sigma: Float) {
        let a = 1 / (sigma * sigma + 1).squareRoot()
        return (a, sigma * a)
    }

    @inline(__always)
    private static func lambda(_ a: Float, _ s: Float) -> Float { log(a) - log(s) }

    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor, generator: inout TorchGenerator) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkOrder(index, expected: nextIndex, className: className)
        try SchedulerSupport.checkSameShape(modelOutput, sample, "model output and sample", className: className)
        if let previous = modelOutputs.last, previous.shape != modelOutput.shape {
            throw DiffusionError("\(className): the sample shape changed from \(previous.shape) to \(modelOutput.shape) mid-run (reset() first)")
        }
        let k = beginIndex + index
        let n = fullTimestepCount
        let lowerFinal = k == n - 1 && (eulerAtFinal || (lowerOrderFinal && n < 15) || finalSigmasType == .zero)
        let lowerSecond = k == n - 2 && lowerOrderFinal && n < 15

        // convert_model_output: data prediction x₀.
        let (aS, sS) = Self.alphaSigma(fullSigmas[k])
        let x0: Tensor
        switch predictionType {
        case .epsilon: x0 = try elementwise(sample, modelOutput) { x, m in (x - sS * m) / aS }
        case .sample: x0 = modelOutput
        case .vPrediction: x0 = try elementwise(sample, modelOutput) { x, m in aS * x - sS * m }
        }
        if modelOutputs.count == solverOrder { modelOutputs.removeFirst() }
        modelOutputs.append(x0)

        let prev: Tensor
        if solverOrder == 1 || lowerOrderNums < 1 || lowerFinal {
            prev = try firstOrder(x0, k: k, sample: sample)
        } else if solverOrder == 2 || lowerOrderNums < 2 || lowerSecond {
            prev = try secondOrder(k: k, sample: sample)
        } else {
            prev = try thirdOrder(k: k, sample: sample)
        }
        if lowerOrderNums < solverOrder { lowerOrderNums += 1 }
        nextIndex += 1
        return prev
    }

    private func firstOrder(_ m: Tensor, k: Int, sample: Tensor) throws(DiffusionError) -> Tensor {
        let (aT, sT) = Self.alphaSigma(fullSigmas[k + 1])
        let (aS, sS) = Self.alphaSigma(fullSigmas[k])
        let h = Self.lambda(aT, sT) - Self.lambda(aS, sS)
        let c1 = sT / sS
        let c2 = aT * (exp(-h) - 1)
        return try elementwise(sample, m) { x, d in c1 * x - c2 * d }
    }

    private func secondOrder(k: Int, sample: Tensor) throws(DiffusionError) -> Tensor {
        let (aT, sT) = Self.alphaSigma(fullSigmas[k + 1])
        let (a0, s0) = Self.alphaSigma(fullSigmas[k])
        let (a1, s1) = Self.alphaSigma(fullSigmas[k - 1])
        let lT = Self.lambda(aT, sT), l0 = Self.lambda(a0, s0), l1 = Self.lambda(a1, s1)
        let m0 = modelOutputs[modelOutputs.count - 1], m1 = modelOutputs[modelOutputs.count - 2]
        let h = lT - l0, h0 = l0 - l1
        let r0 = h0 / h
        let invR0 = 1 / r0
        let c1 = sT / s0
        let em1 = exp(-h) - 1
        let c2 = aT * em1
        if heun {
            let c3 = aT * (em1 / h + 1)
            return try elementwise(sample, m0, m1) { x, d0, d1m in
                c1 * x - c2 * d0 + c3 * (invR0 * (d0 - d1m))
            }
        }
        let c3 = 0.5 * c2
        return try elementwise(sample, m0, m1) { x, d0, d1m in
            c1 * x - c2 * d0 - c3 * (invR0 * (d0 - d1m))
        }
    }

    private func thirdOrder(k: Int, sample: Tensor) throws(DiffusionError) -> Tensor {
        let (aT, sT) = Self.alphaSigma(fullSigmas[k + 1])
        let (a0, s0) = Self.alphaSigma(fullSigmas[k])
        let (a1, s1) = Self.alphaSigma(fullSigmas[k - 1])
        let (a2, s2) = Self.alphaSigma(fullSigmas[k - 2])
        let lT = Self.lambda(aT, sT), l0 = Self.lambda(a0, s0), l1 = Self.lambda(a1, s1), l2 = Self.lambda(a2, s2)
        let c = modelOutputs.count
        let m0 = modelOutputs[c - 1], m1 = modelOutputs[c - 2], m2 = modelOutputs[c - 3]
        let h = lT - l0, h0 = l0 - l1, h1 = l1 - l2
        let r0 = h0 / h, r1 = h1 / h
        let invR0 = 1 / r0, invR1 = 1 / r1
        let w = r0 / (r0 + r1), invSum = 1 / (r0 + r1)
        let e = exp(-h)
        let c1 = sT / s0
        let c2 = aT * (e - 1)
        let c3 = aT * ((e - 1) / h + 1)
        let c4 = aT * ((e - 1 + h) / (h * h) - 0.5)
        let d10 = try elementwise(m0, m1) { a, b in invR0 * (a - b) }
        let d11 = try elementwise(m1, m2) { a, b in invR1 * (a - b) }
        let partial = try elementwise(sample, m0) { x, d0 in c1 * x - c2 * d0 }
        return try elementwise(partial, d10, d11) { p, u, v in
            let diff = u - v
            let d1 = u + w * diff
            let d2 = invSum * diff
            return p + c3 * d1 - c4 * d2
        }
    }

    public func addNoise(original: Tensor, noise: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkSameShape(original, noise, "original and noise", className: className)
        let (a, s) = Self.alphaSigma(fullSigmas[beginIndex + index])
        return try elementwise(original, noise) { x, z in a * x + s * z }
    }
}
