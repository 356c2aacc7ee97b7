import Foundation
import Tensor

/// The σ-parametrised schedule shared by `EulerDiscreteScheduler` and
/// `EulerAncestralDiscreteScheduler`: float32 timesteps, σ_i = interp(t_i, training σ) (or a
/// Karras ramp with fractional timesteps from `_sigma_to_t`), and a final σ.
struct EulerSigmaSchedule {
    var timesteps: [Float]
    var sigmas: [Float]

    static func make(config: SchedulerConfig, schedule: TrainingSchedule, steps: Int, karras: Bool,
                     finalSigma: SchedulerConfig.FinalSigmasType) throws(DiffusionError) -> EulerSigmaSchedule {
        let train = schedule.count
        let spacing = config.timestepSpacing ?? .linspace
        let raw = Timesteps.standard(spacing, train: train, steps: steps, offset: config.resolvedStepsOffset)
        let ts = raw.map { Float($0) }
        guard ts.count == steps, ts.allSatisfy({ $0 >= 0 && $0 <= Float(train - 1) }) else {
            throw config.error("timestep_spacing", "\"\(spacing.rawValue)\" with steps_offset \(config.resolvedStepsOffset) and \(steps) steps gives timesteps outside 0...\(train - 1); choose another step count")
        }
        let trainSigmas = schedule.sigmas
        var sig = ts.map { NumPy.interpIndex(Double($0), trainSigmas) }
        var timesteps = ts
        if karras {
            let sMin = config.sigmaMin ?? sig[sig.count - 1]
            let sMax = config.sigmaMax ?? sig[0]
            sig = karrasSigmas(sigmaMin: sMin, sigmaMax: sMax, count: steps)
            let logs = float32Logs(trainSigmas)
            timesteps = sig.map { Float(sigmaToT($0, logSigmas: logs)) }
        }
        let last: Float = finalSigma == .zero ? 0 : trainSigmas[0]
        return EulerSigmaSchedule(timesteps: timesteps, sigmas: sig.map { Float($0) } + [last])
    }

    /// diffusers `init_noise_sigma`: max σ for linspace/trailing spacing, sqrt(max σ² + 1) for leading.
    static func initNoiseSigma(_ sigmas: [Float], spacing: SchedulerConfig.TimestepSpacing) -> Float {
        let m = sigmas.max() ?? 0
        return spacing == .leading ? (m * m + 1).squareRoot() : m
    }
}

/// Checks shared by both Euler schedulers.
private func validateEulerConfig(_ config: SchedulerConfig, className: String) throws(DiffusionError) {
    if config.useExponentialSigmas == true { throw config.error("use_exponential_sigmas", "exponential sigmas are not supported") }
    if config.useBetaSigmas == true { throw config.error("use_beta_sigmas", "beta sigmas are not supported") }
    if config.interpolationType == .logLinear { throw config.error("interpolation_type", "\"log_linear\" is not supported (only \"linear\")") }
    if config.timestepType == .continuous && config.resolvedPredictionType == .vPrediction {
        throw config.error("timestep_type", "\"continuous\" timesteps are not supported")
    }
}

/// x₀ from the model output (Euler and Euler ancestral; σ-space, input scaled by 1/sqrt(σ²+1)).
private func eulerPredictOriginal(_ type: SchedulerConfig.PredictionType, sigma: Float, modelOutput: Tensor, sample: Tensor) throws(DiffusionError) -> Tensor {
    switch type {
    case .epsilon:
        return try elementwise(sample, modelOutput) { x, m in x - sigma * m }
    case .vPrediction:
        let c = -sigma / (sigma * sigma + 1).squareRoot()
        let d = sigma * sigma + 1
        return try elementwise(sample, modelOutput) { x, m in m * c + x / d }
    case .sample:
        return modelOutput
    }
}

/// diffusers `EulerDiscreteScheduler` (Karras et al. 2022 Algorithm 2 with s_churn = 0, as the
/// pipelines call it), optionally with Karras sigmas. Class defaults: `timestep_spacing`
/// "linspace", `use_karras_sigmas` false, `final_sigmas_type` "zero".
public struct EulerDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public let className = "EulerDiscreteScheduler"
    public let trainingSchedule: TrainingSchedule
    public let useKarrasSigmas: Bool
    public let predictionType: SchedulerConfig.PredictionType

    public private(set) var numInferenceSteps = 0
    public private(set) var timesteps: [Float] = []
    public private(set) var fullSigmas: [Float] = []
    public var sigmas: [Float]? { fullSigmas }
    public private(set) var initNoiseSigma: Float = 1
    public var isStochastic: Bool { false }
    private var beginIndex = 0
    private var nextIndex = 0

    /// `useKarrasSigmas` overrides the config's `use_karras_sigmas` when given.
    public init(config: SchedulerConfig, useKarrasSigmas: Bool? = nil) throws(DiffusionError) {
        try validateEulerConfig(config, className: "EulerDiscreteScheduler")
        self.config = config
        self.useKarrasSigmas = useKarrasSigmas ?? config.useKarrasSigmas ?? false
        predictionType = config.resolvedPredictionType
        trainingSchedule = try eulerTrainingSchedule(config)
        let s = trainingSchedule.sigmas
        initNoiseSigma = EulerSigmaSchedule.initNoiseSigma(s + [0], spacing: config.timestepSpacing ?? .linspace)
    }

    public mutating func setTimesteps(steps: Int, strength: Double) throws(DiffusionError) {
        try SchedulerSupport.validateSteps(steps, strength: strength, trainSteps: trainingSchedule.count, className: className)
        let s = try EulerSigmaSchedule.make(config: config, schedule: trainingSchedule, steps: steps, karras: useKarrasSigmas,
                                            finalSigma: config.finalSigmasType ?? .zero)
        beginIndex = try SchedulerSupport.beginIndex(steps: steps, strength: strength, className: className)
        numInferenceSteps = steps
        fullSigmas = s.sigmas
        timesteps = Array(s.timesteps[beginIndex...])
        initNoiseSigma = EulerSigmaSchedule.initNoiseSigma(s.sigmas, spacing: config.timestepSpacing ?? .linspace)
        nextIndex = 0
    }

    public mutating func reset() { nextIndex = 0 }

    public func scaleModelInput(_ sample: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        let sigma = fullSigmas[beginIndex + index]
        let d = (sigma * sigma + 1).squareRoot()
        return try elementwise(sample) { $0 / d }
    }

    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor, generator: inout TorchGenerator) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkOrder(index, expected: nextIndex, className: className)
        try SchedulerSupport.checkSameShape(modelOutput, sample, "model output and sample", className: className)
        let k = beginIndex + index
        let sigma = fullSigmas[k]
        let sigmaHat = sigma * 1   // s_churn = 0 ⇒ γ = 0
        let x0 = try eulerPredictOriginal(predictionType, sigma: sigmaHat, modelOutput: modelOutput, sample: sample)
        let dt = fullSigmas[k + 1] - sigmaHat
        let prev = try elementwise(sample, x0) { x, p in x + ((x - p) / sigmaHat) * dt }
        nextIndex += 1
        return prev
    }

    public func addNoise(original: Tensor, noise: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkSameShape(original, noise, "original and noise", className: className)
        let sigma = fullSigmas[beginIndex + index]
        return try elementwise(original, noise) { x, n in x + n * sigma }
    }
}

/// diffusers `EulerAncestralDiscreteScheduler`: Euler with ancestral noise
/// (σ_up, σ_down split of each step), noise drawn from the generator every step.
/// Class defaults: `timestep_spacing` "linspace". It has no Karras option (diffusers ignores
/// `use_karras_sigmas` for this class); `prediction_type` "sample" is rejected as in diffusers.
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public let config: SchedulerConfig
    public let className = "EulerAncestralDiscreteScheduler"
    public let trainingSchedule: TrainingSchedule
    public let predictionType: SchedulerConfig.PredictionType

    public private(set) var numInferenceSteps = 0
    public private(set) var timesteps: [Float] = []
    public private(set) var fullSigmas: [Float] = []
    public var sigmas: [Float]? { fullSigmas }
    public private(set) var initNoiseSigma: Float = 1
    public var isStochastic: Bool { true }
    private var beginIndex = 0
    private var nextIndex = 0

    public init(config: SchedulerConfig) throws(DiffusionError) {
        if config.resolvedPredictionType == .sample {
            throw config.error("prediction_type", "EulerAncestralDiscreteScheduler does not support \"sample\" (as in diffusers)")
        }
        self.config = config
        predictionType = config.resolvedPredictionType
        trainingSchedule = try eulerTrainingSchedule(config)
        initNoiseSigma = EulerSigmaSchedule.initNoiseSigma(trainingSchedule.sigmas + [0], spacing: config.timestepSpacing ?? .linspace)
    }

    public mutating func setTimesteps(steps: Int, strength: Double) throws(DiffusionError) {
        try SchedulerSupport.validateSteps(steps, strength: strength, trainSteps: trainingSchedule.count, className: className)
        let s = try EulerSigmaSchedule.make(config: config, schedule: trainingSchedule, steps: steps, karras: false, finalSigma: .zero)
        beginIndex = try SchedulerSupport.beginIndex(steps: steps, strength: strength, className: className)
        numInferenceSteps = steps
        fullSigmas = s.sigmas
        timesteps = Array(s.timesteps[beginIndex...])
        initNoiseSigma = EulerSigmaSchedule.initNoiseSigma(s.sigmas, spacing: config.timestepSpacing ?? .linspace)
        nextIndex = 0
    }

    public mutating func reset() { nextIndex = 0 }

    public func scaleModelInput(_ sample: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        let sigma = fullSigmas[beginIndex + index]
        let d = (sigma * sigma + 1).squareRoot()
        return try elementwise(sample) { $0 / d }
    }

    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor, generator: inout TorchGenerator) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkOrder(index, expected: nextIndex, className: className)
        try SchedulerSupport.checkSameShape(modelOutput, sample, "model output and sample", className: className)
        let k = beginIndex + index
        let sigma = fullSigmas[k]
        let x0 = try eulerPredictOriginal(predictionType, sigma: sigma, modelOutput: modelOutput, sample: sample)
        let sFrom = sigma, sTo = fullSigmas[k + 1]
        let sigmaUp = ((sTo * sTo) * (sFrom * sFrom - sTo * sTo) / (sFrom * sFrom)).squareRoot()
        let sigmaDown = (sTo * sTo - sigmaUp * sigmaUp).squareRoot()
        let dt = sigmaDown - sigma
        let deterministic = try elementwise(sample, x0) { x, p in x + ((x - p) / sigma) * dt }
        var noise: Tensor
        do { noise = try generator.randn(modelOutput.shape) } catch { throw DiffusionError("\(className): \(error)") }
        let prev = try elementwise(deterministic, noise) { p, z in p + z * sigmaUp }
        nextIndex += 1
        return prev
    }

    public func addNoise(original: Tensor, noise: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkSameShape(original, noise, "original and noise", className: className)
        let sigma = fullSigmas[beginIndex + index]
        return try elementwise(original, noise) { x, n in x + n * sigma }
    }
}

/// The training schedule of the Euler classes: `rescale_betas_zero_snr` also pins ᾱ_T to 2⁻²⁴.
private func eulerTrainingSchedule(_ config: SchedulerConfig) throws(DiffusionError) -> TrainingSchedule {
    let rescale = config.rescaleBetasZeroSNR ?? false
    var s = try TrainingSchedule(config: config, rescaleZeroSNR: rescale)
    if rescale { s = s.pinningLastAlphaCumprod(Float(1.0 / 16_777_216.0)) }
    return s
}
