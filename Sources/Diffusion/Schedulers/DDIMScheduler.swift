import Tensor

/// diffusers `DDIMScheduler` (Song et al. 2020), with `eta` (0: deterministic DDIM; > 0 adds
/// `eta`-scaled posterior noise drawn from the generator). Also provides the DDIM inversion step
/// (`invertStep`) used by null-text / Direct Inversion.
///
/// Class defaults (for fields the config leaves out): `set_alpha_to_one` true, `clip_sample` true,
/// `timestep_spacing` "leading". SD1.5's config sets the first two to false.
public struct DDIMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let className = "DDIMScheduler"
    public let trainingSchedule: TrainingSchedule
    /// The DDIM eta (diffusers passes it to `step`; here it is fixed per scheduler).
    public let eta: Double
    public let finalAlphaCumprod: Float
    public let predictionType: SchedulerConfig.PredictionType
    public let spacing: SchedulerConfig.TimestepSpacing
    public let clipSample: Bool
    public let clipSampleRange: Float

    public private(set) var numInferenceSteps = 0
    public private(set) var timesteps: [Float] = []
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Float { 1 }
    public var isStochastic: Bool { eta > 0 }
    private var intTimesteps: [Int] = []
    private var nextIndex = 0

    public init(config: SchedulerConfig, eta: Double = 0) throws(DiffusionError) {
        guard eta.isFinite, eta >= 0 else { throw DiffusionError("DDIMScheduler: eta must be a finite number >= 0, got \(eta)") }
        if config.thresholding == true {
            throw config.error("thresholding", "dynamic thresholding is not supported (SD1.5 does not use it)")
        }
        self.config = config
        self.eta = eta
        trainingSchedule = try TrainingSchedule(config: config, rescaleZeroSNR: config.rescaleBetasZeroSNR ?? false)
        finalAlphaCumprod = (config.setAlphaToOne ?? true) ? 1 : trainingSchedule.alphasCumprod[0]
        predictionType = config.resolvedPredictionType
        spacing = config.timestepSpacing ?? .leading
        clipSample = config.clipSample ?? true
        clipSampleRange = Float(config.clipSampleRange ?? 1)
    }

    public mutating func setTimesteps(steps: Int, strength: Double) throws(DiffusionError) {
        let train = trainingSchedule.count
        try SchedulerSupport.validateSteps(steps, strength: strength, trainSteps: train, className: className)
        let full = Timesteps.standard(spacing, train: train, steps: steps, offset: config.resolvedStepsOffset)
            .map { Int(NumPy.round($0)) }
        try checkTimesteps(full, steps: steps)
        let begin = try SchedulerSupport.beginIndex(steps: steps, strength: strength, className: className)
        numInferenceSteps = steps
        intTimesteps = Array(full[begin...])
        timesteps = intTimesteps.map { Float($0) }
        nextIndex = 0
    }

    private func checkTimesteps(_ ts: [Int], steps: Int) throws(DiffusionError) {
        let train = trainingSchedule.count
        guard ts.count == steps, ts.allSatisfy({ $0 >= 0 && $0 < train }) else {
            throw config.error("timestep_spacing", "\"\(spacing.rawValue)\" with steps_offset \(config.resolvedStepsOffset) and \(steps) steps gives timesteps outside 0..<\(train) (\(ts.prefix(3))…); choose another step count")
        }
    }

    public mutating func reset() { nextIndex = 0 }

    public func scaleModelInput(_ sample: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        return sample
    }

    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor, generator: inout TorchGenerator) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkOrder(index, expected: nextIndex, className: className)
        try SchedulerSupport.checkSameShape(modelOutput, sample, "model output and sample", className: className)
        let t = intTimesteps[index]
        let prevT = t - trainingSchedule.count / numInferenceSteps
        let aT = trainingSchedule.alphasCumprod[t]
        let aP = trainingSchedule.alphaProd(prevT, final: finalAlphaCumprod)
        let bT: Float = 1 - aT
        let sa = aT.squareRoot(), sb = bT.squareRoot()

        var x0: Tensor, eps: Tensor
        switch predictionType {
        case .epsilon:
            x0 = try elementwise(sample, modelOutput) { x, m in (x - sb * m) / sa }
            eps = modelOutput
        case .sample:
            x0 = modelOutput
            eps = try elementwise(sample, modelOutput) { x, m in (x - sa * m) / sb }
        case .vPrediction:
            x0 = try elementwise(sample, modelOutput) { x, m in sa * x - sb * m }
            eps = try elementwise(sample, modelOutput) { x, m in sa * m + sb * x }
        }
        if clipSample {
            let r = clipSampleRange
            x0 = try elementwise(x0) { v in min(max(v, -r), r) }
        }
        // variance = (β_prev/β_t)·(1 − ᾱ_t/ᾱ_prev); std = eta·sqrt(variance)
        let bP: Float = 1 - aP
        let variance = (bP / bT) * (1 - aT / aP)
        let std = Float(eta) * variance.squareRoot()
        let dirCoeff = ((1 - aP) - std * std).squareRoot()
        let saP = aP.squareRoot()
        var prev = try elementwise(x0, eps) { x0v, e in saP * x0v + dirCoeff * e }
        if eta > 0 {
            var noise: Tensor
            do { noise = try generator.randn(modelOutput.shape) } catch { throw DiffusionError("\(className): \(error)") }
            prev = try elementwise(prev, noise) { p, z in p + std * z }
        }
        nextIndex += 1
        return prev
    }

    public func addNoise(original: Tensor, noise: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        return try ddpmAddNoise(original: original, noise: noise, alphaProd: trainingSchedule.alphasCumprod[intTimesteps[index]], className: className)
    }

    /// DDIM inversion (`next_step` of null-text inversion / PnPInversion's `DirectInversion`):
    /// moves `sample` from the noise level before `timestep` to `timestep` with the ε predicted
    /// at `timestep`:
    /// ```
    /// t_from = min(t − T/N, 999);  a_from = ᾱ[t_from] (final ᾱ if t_from < 0);  a_to = ᾱ[t]
    /// x_t = sqrt(a_to)·(x − sqrt(1 − a_from)·ε)/sqrt(a_from) + sqrt(1 − a_to)·ε
    /// ```
    /// Needs `setTimesteps` (for N); `timestep` is a training timestep (e.g. from `timesteps`,
    /// traversed in reverse). Stateless: it does not touch the step counter.
    public func invertStep(modelOutput: Tensor, timestep: Int, sample: Tensor) throws(DiffusionError) -> Tensor {
        guard numInferenceSteps > 0 else { throw DiffusionError("\(className): call setTimesteps before invertStep") }
        let train = trainingSchedule.count
        guard timestep >= 0, timestep < train else {
            throw DiffusionError("\(className): inversion timestep \(timestep) is outside 0..<\(train)")
        }
        try SchedulerSupport.checkSameShape(modelOutput, sample, "model output and sample", className: className)
        let from = min(timestep - train / numInferenceSteps, 999)
        let aFrom = from >= 0 ? trainingSchedule.alphasCumprod[min(from, train - 1)] : finalAlphaCumprod
        let aTo = trainingSchedule.alphasCumprod[timestep]
        let bFrom: Float = 1 - aFrom
        let sbFrom = bFrom.squareRoot(), saFrom = aFrom.squareRoot()
        let dirCoeff = (1 - aTo).squareRoot(), saTo = aTo.squareRoot()
        return try elementwise(sample, modelOutput) { x, e in
            let x0 = (x - sbFrom * e) / saFrom
            return saTo * x0 + dirCoeff * e
        }
    }
}

/// `sqrt(ᾱ)·x + sqrt(1 − ᾱ)·noise` (DDPM forward process; DDIM and PNDM `add_noise`).
func ddpmAddNoise(original: Tensor, noise: Tensor, alphaProd a: Float, className: String) throws(DiffusionError) -> Tensor {
    try SchedulerSupport.checkSameShape(original, noise, "original and noise", className: className)
    let sa = a.squareRoot(), sb = (1 - a).squareRoot()
    return try elementwise(original, noise) { x, n in sa * x + sb * n }
}
