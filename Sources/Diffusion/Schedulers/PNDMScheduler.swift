import Tensor

/// diffusers `PNDMScheduler` (Liu et al. 2022, pseudo numerical methods). With `skip_prk_steps`
/// (SD1.5's setting) it is PLMS: the second timestep is evaluated twice (N + 1 model evaluations),
/// the first step is a Heun-like predictor/corrector and later steps are linear multistep of order
/// up to 4. Without it, the first three intervals use 12 pseudo Runge–Kutta evaluations.
///
/// Class defaults: `skip_prk_steps` false, `set_alpha_to_one` false, `timestep_spacing` "leading".
public struct PNDMScheduler: Scheduler {
    public let config: SchedulerConfig
    public let className = "PNDMScheduler"
    public let trainingSchedule: TrainingSchedule
    public let finalAlphaCumprod: Float
    public let skipPRKSteps: Bool
    public let predictionType: SchedulerConfig.PredictionType
    public let spacing: SchedulerConfig.TimestepSpacing

    public private(set) var numInferenceSteps = 0
    public private(set) var timesteps: [Float] = []
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Float { 1 }
    public var isStochastic: Bool { false }

    private var intTimesteps: [Int] = []
    private var prkTimesteps: [Int] = []
    // Multistep state (diffusers: ets, counter, cur_sample, cur_model_output).
    private var ets: [Tensor] = []
    private var counter = 0
    private var curSample: Tensor?
    private var curModelOutput: Tensor?

    public init(config: SchedulerConfig) throws(DiffusionError) {
        if config.resolvedPredictionType == .sample {
            throw config.error("prediction_type", "PNDMScheduler supports \"epsilon\" and \"v_prediction\", not \"sample\"")
        }
        self.config = config
        trainingSchedule = try TrainingSchedule(config: config)
        finalAlphaCumprod = (config.setAlphaToOne ?? false) ? 1 : trainingSchedule.alphasCumprod[0]
        skipPRKSteps = config.skipPRKSteps ?? false
        predictionType = config.resolvedPredictionType
        spacing = config.timestepSpacing ?? .leading
    }

    public mutating func setTimesteps(steps: Int, strength: Double) throws(DiffusionError) {
        let train = trainingSchedule.count
        try SchedulerSupport.validateSteps(steps, strength: strength, trainSteps: train, className: className)
        let asc = Timesteps.pndmAscending(spacing, train: train, steps: steps, offset: config.resolvedStepsOffset)
        guard asc.count == steps, asc.allSatisfy({ $0 >= 0 && $0 < train }) else {
            throw config.error("timestep_spacing", "\"\(spacing.rawValue)\" with steps_offset \(config.resolvedStepsOffset) and \(steps) steps gives timesteps outside 0..<\(train); choose another step count")
        }
        var full: [Int]
        if skipPRKSteps {
            // concat(_ts[:-1], _ts[-2:-1], _ts[-1:])[::-1]
            var plms = Array(asc.dropLast())
            if asc.count >= 2 { plms.append(asc[asc.count - 2]) }
            plms.append(asc[asc.count - 1])
            prkTimesteps = []
            full = plms.reversed()
        } else {
            guard steps >= 4 else {
                throw config.error("skip_prk_steps", "false (Runge–Kutta warm-up) needs at least 4 inference steps, got \(steps)")
            }
            // prk = (ts[-4:].repeat(2) + tile([0, T//N//2], 4))[:-1].repeat(2)[1:-1][::-1]
            let half = train / steps / 2
            var prk: [Int] = []
            for t in asc.suffix(4) { prk.append(t); prk.append(t + half) }
            prk.removeLast()
            var doubled: [Int] = []
            for t in prk { doubled.append(t); doubled.append(t) }
            prkTimesteps = Array(doubled.dropFirst().dropLast().reversed())
            full = prkTimesteps + asc.dropLast(3).reversed()
        }
        let begin = try SchedulerSupport.beginIndex(steps: steps, strength: strength, className: className)
        numInferenceSteps = steps
        intTimesteps = Array(full[begin...])
        timesteps = intTimesteps.map { Float($0) }
        reset()
    }

    public mutating func reset() {
        ets = []
        counter = 0
        curSample = nil
        curModelOutput = nil
    }

    public func scaleModelInput(_ sample: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        return sample
    }

    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor, generator: inout TorchGenerator) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        try SchedulerSupport.checkOrder(index, expected: counter, className: className)
        try SchedulerSupport.checkSameShape(modelOutput, sample, "model output and sample", className: className)
        if let previous = ets.first ?? curSample, previous.shape != modelOutput.shape {
            throw DiffusionError("\(className): the sample shape changed from \(previous.shape) to \(modelOutput.shape) mid-run (reset() first)")
        }
        let t = intTimesteps[index]
        if counter < prkTimesteps.count && !skipPRKSteps {
            return try stepPRK(modelOutput, t, sample)
        }
        return try stepPLMS(modelOutput, t, sample)
    }

    private mutating func stepPRK(_ m: Tensor, _ timestep: Int, _ sample: Tensor) throws(DiffusionError) -> Tensor {
        let diffToPrev = counter % 2 != 0 ? 0 : trainingSchedule.count / numInferenceSteps / 2
        let prevT = timestep - diffToPrev
        let t = prkTimesteps[counter / 4 * 4]
        var output = m
        switch counter % 4 {
        case 0:
            let sixth = Float(1.0 / 6.0)
            curModelOutput = try elementwise(m) { sixth * $0 }   // 0 + 1/6·m
            ets.append(m)
            curSample = sample
        case 1, 2:
            let third = Float(1.0 / 3.0)
            curModelOutput = try elementwise(curModelOutput ?? m, m) { c, v in c + third * v }
        default:
            let sixth = Float(1.0 / 6.0)
            output = try elementwise(curModelOutput ?? m, m) { c, v in c + sixth * v }
            curModelOutput = nil
        }
        let base = curSample ?? sample
        let prev = try prevSample(base, t, prevT, output)
        counter += 1
        return prev
    }

    private mutating func stepPLMS(_ m: Tensor, _ timestepIn: Int, _ sampleIn: Tensor) throws(DiffusionError) -> Tensor {
        var timestep = timestepIn
        var sample = sampleIn
        let delta = trainingSchedule.count / numInferenceSteps
        var prevT = timestep - delta
        if counter != 1 {
            ets = Array(ets.suffix(3))
            ets.append(m)
        } else {
            prevT = timestep
            timestep = timestep + delta
        }
        var output: Tensor
        let n = ets.count
        if n == 1 && counter == 0 {
            output = m
            curSample = sample
        } else if n == 1 && counter == 1 {
            output = try elementwise(m, ets[0]) { a, b in (a + b) / 2 }
            guard let stored = curSample else { throw DiffusionError("\(className): internal state lost the stored sample") }
            sample = stored
            curSample = nil
        } else if n == 2 {
            output = try elementwise(ets[1], ets[0]) { e1, e2 in (3 * e1 - e2) / 2 }
        } else if n == 3 {
            output = try elementwise(ets[2], ets[1], ets[0]) { e1, e2, e3 in (23 * e1 - 16 * e2 + 5 * e3) / 12 }
        } else {
            let c = Float(1.0 / 24.0)
            let e1 = ets[3], e2 = ets[2], e3 = ets[1], e4 = ets[0]
            let partial = try elementwise(e1, e2, e3) { a, b, d in 55 * a - 59 * b + 37 * d }
            output = try elementwise(partial, e4) { p, d in c * (p - 9 * d) }
        }
        let prev = try prevSample(sample, timestep, prevT, output)
        counter += 1
        return prev
    }

    /// PNDM formula (9): x_{t−δ} from x_t and the (combined) ε.
    private func prevSample(_ sample: Tensor, _ t: Int, _ prevT: Int, _ modelOutputIn: Tensor) throws(DiffusionError) -> Tensor {
        guard t >= 0, t < trainingSchedule.count else {
            throw DiffusionError("\(className): timestep \(t) is outside the training schedule")
        }
        let aT = trainingSchedule.alphasCumprod[t]
        let aP = trainingSchedule.alphaProd(prevT, final: finalAlphaCumprod)
        let bT: Float = 1 - aT, bP: Float = 1 - aP
        var mo = modelOutputIn
        if predictionType == .vPrediction {
            let sa = aT.squareRoot(), sb = bT.squareRoot()
            mo = try elementwise(modelOutputIn, sample) { m, x in sa * m + sb * x }
        }
        let sampleCoeff = (aP / aT).squareRoot()
        let denom = aT * bP.squareRoot() + (aT * bT * aP).squareRoot()
        let diff = aP - aT
        return try elementwise(sample, mo) { x, m in sampleCoeff * x - (diff * m) / denom }
    }

    public func addNoise(original: Tensor, noise: Tensor, index: Int) throws(DiffusionError) -> Tensor {
        try SchedulerSupport.checkIndex(index, count: timesteps.count, className: className)
        return try ddpmAddNoise(original: original, noise: noise, alphaProd: trainingSchedule.alphasCumprod[intTimesteps[index]], className: className)
    }
}
