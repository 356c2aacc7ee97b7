import Tensor

/// A noise scheduler as used by the sampling loop, numerically equal to its diffusers counterpart.
///
/// Design: a scheduler is a value (struct) that owns its schedule and, for multistep methods, its
/// history. The loop addresses steps by **index** into `timesteps`, never by timestep value (the
/// diffusers method of finding the step index by searching the timestep list breaks on repeated
/// timesteps; all diffusers pipelines step strictly in order, which is what the index encodes):
///
/// ```swift
/// var scheduler = try SchedulerFactory.make("euler-a", config: config)
/// try scheduler.setTimesteps(steps: 25)                      // img2img: strength: 0.6
/// var generator = TorchGenerator(seed: 42)
/// var x = try generator.randn(shape).scaled(by: scheduler.initNoiseSigma)
/// // img2img instead: x = try scheduler.addNoise(original: latents, noise: generator.randn(shape))
/// for i in scheduler.timesteps.indices {
///     let input = try scheduler.scaleModelInput(x, index: i)
///     let eps = unet(input, scheduler.timesteps[i], ...)   // CFG combine here
///     x = try scheduler.step(modelOutput: eps, index: i, sample: x, generator: &generator)
/// }
/// ```
///
/// `step` must be called for indices 0, 1, 2, … in order (a multistep method's history depends on
/// it); calling it out of order is an error, and `reset()` (or `setTimesteps`) starts over.
/// Schedulers that draw noise (Euler ancestral, DDIM with eta > 0) take it from `generator` exactly
/// as diffusers' `randn_tensor(model_output.shape, generator=generator)` on CPU does, so the same
/// seeded generator that drew the initial latents reproduces a diffusers run bit for bit in the
/// random stream. Deterministic schedulers never touch the generator.
public protocol Scheduler: Sendable {
    /// The config this scheduler was built from (defaults are resolved for its class).
    var config: SchedulerConfig { get }
    /// The diffusers class this scheduler reproduces (e.g. "EulerDiscreteScheduler").
    var className: String { get }
    /// The number of inference steps requested in the last `setTimesteps`, 0 before.
    var numInferenceSteps: Int { get }
    /// The timesteps the loop evaluates, in order, after img2img truncation. Integers for DDIM,
    /// PNDM and DPM-Solver (exact in Float); fractional for Euler with Karras sigmas.
    var timesteps: [Float] { get }
    /// The σ schedule (one more entry than the full, untruncated timestep list: the final σ) for
    /// σ-parametrised schedulers (Euler, Euler ancestral, DPM-Solver); nil for DDIM and PNDM.
    var sigmas: [Float]? { get }
    /// The standard deviation of the initial noise (multiply `randn` by it for text-to-image).
    var initNoiseSigma: Float { get }
    /// Whether `step` draws from the generator (ancestral sampling, DDIM with eta > 0).
    var isStochastic: Bool { get }
    /// The training schedule (betas, ᾱ).
    var trainingSchedule: TrainingSchedule { get }

    /// Computes the timestep schedule for `steps` inference steps and resets all state.
    /// `strength` < 1 keeps only the last `min(Int(steps·strength), steps)` steps, as diffusers'
    /// img2img `get_timesteps` does (`timesteps[t_start·order:]` and `set_begin_index(t_start)`).
    mutating func setTimesteps(steps: Int, strength: Double) throws(DiffusionError)
    /// The UNet input for step `index` (Euler scales by 1/sqrt(σ²+1); others return `sample`).
    func scaleModelInput(_ sample: Tensor, index: Int) throws(DiffusionError) -> Tensor
    /// One denoising step: the sample for the next index from the model output at `index`.
    mutating func step(modelOutput: Tensor, index: Int, sample: Tensor, generator: inout TorchGenerator) throws(DiffusionError) -> Tensor
    /// Forward-diffuses `original` with `noise` to the noise level of `timesteps[index]` (img2img:
    /// index 0, which diffusers passes as `timesteps[:1]`).
    func addNoise(original: Tensor, noise: Tensor, index: Int) throws(DiffusionError) -> Tensor
    /// Forgets the multistep history and the step counter; keeps the timestep schedule.
    mutating func reset()
}

extension Scheduler {
    /// Text-to-image schedule (strength 1).
    public mutating func setTimesteps(steps: Int) throws(DiffusionError) {
        try setTimesteps(steps: steps, strength: 1)
    }

    /// `step` for deterministic schedulers; throws for stochastic ones, which need a generator.
    public mutating func step(modelOutput: Tensor, index: Int, sample: Tensor) throws(DiffusionError) -> Tensor {
        guard !isStochastic else {
            throw DiffusionError("\(className) draws noise in step(); pass a generator")
        }
        var unused = TorchGenerator(seed: 0)
        return try step(modelOutput: modelOutput, index: index, sample: sample, generator: &unused)
    }

    /// img2img noising at the first timestep of the schedule.
    public func addNoise(original: Tensor, noise: Tensor) throws(DiffusionError) -> Tensor {
        try addNoise(original: original, noise: noise, index: 0)
    }
}

/// Shared validation and img2img bookkeeping.
enum SchedulerSupport {
    static func validateSteps(_ steps: Int, strength: Double, trainSteps: Int, className: String) throws(DiffusionError) {
        guard steps >= 1 else { throw DiffusionError("\(className): the number of inference steps must be at least 1, got \(steps)") }
        guard steps <= trainSteps else {
            throw DiffusionError("\(className): \(steps) inference steps exceed the \(trainSteps) training timesteps")
        }
        guard strength.isFinite, strength > 0, strength <= 1 else {
            throw DiffusionError("\(className): strength must lie in (0, 1], got \(strength)")
        }
    }

    /// diffusers `get_timesteps`: the first active index into the full schedule (order 1 for all
    /// schedulers here). Throws when the strength leaves no step at all.
    static func beginIndex(steps: Int, strength: Double, className: String) throws(DiffusionError) -> Int {
        let initTimestep = min(Int(Double(steps) * strength), steps)
        guard initTimestep >= 1 else {
            throw DiffusionError("\(className): strength \(strength) with \(steps) steps leaves no denoising step")
        }
        return max(steps - initTimestep, 0)
    }

    static func checkIndex(_ index: Int, count: Int, className: String) throws(DiffusionError) {
        guard index >= 0, index < count else {
            throw DiffusionError("\(className): step index \(index) is out of range 0..<\(count) (call setTimesteps first)")
        }
    }

    static func checkSameShape(_ a: Tensor, _ b: Tensor, _ what: String, className: String) throws(DiffusionError) {
        guard a.shape == b.shape else {
            throw DiffusionError("\(className): \(what) shapes differ: \(a.shape) vs \(b.shape)")
        }
    }

    static func checkOrder(_ index: Int, expected: Int, className: String) throws(DiffusionError) {
        guard index == expected else {
            throw DiffusionError("\(className): step(index: \(index)) called but the next step is \(expected); steps run in order (reset() to restart)")
        }
    }
}

// MARK: - Elementwise kernels

/// A new tensor of `shape` whose elements `body` writes (all of them). The kernels below are plain
/// scalar loops over unsafe buffers (auto-vectorised; no per-element allocation). Every scheduler
/// mirrors torch's operation order (each tensor op rounds to float32; no fused multiply-adds), so
/// its results are bit-identical to diffusers' wherever the scalar coefficients are.
@inline(__always)
func mapTensor(shape: [Int], _ body: (UnsafeMutablePointer<Float>) -> Void) throws(DiffusionError) -> Tensor {
    do {
        return try Tensor(shape: shape) { buf in body(buf.baseAddress!) }
    } catch {
        throw DiffusionError("cannot create a tensor of shape \(shape): \(error)")
    }
}

/// Unary elementwise op.
@inline(__always)
func elementwise(_ x: Tensor, _ f: (Float) -> Float) throws(DiffusionError) -> Tensor {
    try mapTensor(shape: x.shape) { out in
        x.withUnsafeBufferPointer { xb in
            let xp = xb.baseAddress!
            for i in 0..<xb.count { out[i] = f(xp[i]) }
        }
    }
}

/// Binary elementwise op on equal-shaped tensors (the caller checks the shapes).
@inline(__always)
func elementwise(_ x: Tensor, _ y: Tensor, _ f: (Float, Float) -> Float) throws(DiffusionError) -> Tensor {
    try mapTensor(shape: x.shape) { out in
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeBufferPointer { yb in
                let xp = xb.baseAddress!, yp = yb.baseAddress!
                for i in 0..<min(xb.count, yb.count) { out[i] = f(xp[i], yp[i]) }
            }
        }
    }
}

/// Ternary elementwise op on equal-shaped tensors (the caller checks the shapes).
@inline(__always)
func elementwise(_ x: Tensor, _ y: Tensor, _ z: Tensor, _ f: (Float, Float, Float) -> Float) throws(DiffusionError) -> Tensor {
    try mapTensor(shape: x.shape) { out in
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeBufferPointer { yb in
                z.withUnsafeBufferPointer { zb in
                    let xp = xb.baseAddress!, yp = yb.baseAddress!, zp = zb.baseAddress!
                    for i in 0..<min(xb.count, yb.count, zb.count) { out[i] = f(xp[i], yp[i], zp[i]) }
                }
            }
        }
    }
}

extension Tensor {
    /// `self · s` elementwise (e.g. initial latents times `initNoiseSigma`).
    public func scaled(by s: Float) throws(DiffusionError) -> Tensor { try elementwise(self) { $0 * s } }
}
