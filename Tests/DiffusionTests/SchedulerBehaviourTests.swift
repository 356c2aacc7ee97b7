import Foundation
import Testing
import Tensor
@testable import Diffusion

/// Factory, step ordering, state reset and misuse errors.
@Suite struct SchedulerBehaviourTests {
    let sd = SchedulerConfig.stableDiffusion15
    let shape = [1, 4, 8, 8]

    func run(_ s: inout any Scheduler, seed: UInt64) throws -> Tensor {
        var g = TorchGenerator(seed: seed)
        var x = try g.randn(shape).scaled(by: s.initNoiseSigma)
        for i in s.timesteps.indices {
            let eps = try standInUNet(try s.scaleModelInput(x, index: i), timestep: s.timesteps[i])
            x = try s.step(modelOutput: eps, index: i, sample: x, generator: &g)
        }
        return x
    }

    @Test func factoryMapsNamesToClasses() throws {
        let expected = [
            "pndm": "PNDMScheduler", "plms": "PNDMScheduler", "ddim": "DDIMScheduler",
            "euler": "EulerDiscreteScheduler", "euler-karras": "EulerDiscreteScheduler",
            "euler-a": "EulerAncestralDiscreteScheduler", "dpm++2m": "DPMSolverMultistepScheduler",
            "dpm++2m-karras": "DPMSolverMultistepScheduler",
        ]
        for (name, cls) in expected {
            #expect(try SchedulerFactory.make(name, config: sd).className == cls, "\(name)")
        }
        for cls in SchedulerFactory.classNames {
            #expect(try SchedulerFactory.make(cls, config: sd).className == cls)
        }
        for name in SchedulerFactory.shortNames {
            #expect(expected[name] != nil, "short name \(name) is listed")
        }
        // _class_name of the SD1.5 config builds PNDM.
        #expect(try SchedulerFactory.make(config: sd).className == "PNDMScheduler")
        do {
            _ = try SchedulerFactory.make("heun", config: sd)
            Issue.record("unknown scheduler accepted")
        } catch {
            #expect(error.description.contains("heun") && error.description.contains("dpm++2m-karras"))
        }
        var noClass = sd
        noClass.className = nil
        #expect(throws: DiffusionError.self) { try SchedulerFactory.make(config: noClass) }
        noClass.className = "LMSDiscreteScheduler"
        #expect(throws: DiffusionError.self) { try SchedulerFactory.make(config: noClass) }
    }

    @Test func shortNamesOverrideTheConfigSampler() throws {
        var karrasConfig = sd
        karrasConfig.useKarrasSigmas = true
        karrasConfig.solverOrder = 3
        var plain = try SchedulerFactory.make("dpm++2m", config: karrasConfig)
        var karras = try SchedulerFactory.make("dpm++2m-karras", config: sd)
        var byClass = try SchedulerFactory.make("DPMSolverMultistepScheduler", config: karrasConfig)
        try plain.setTimesteps(steps: 25)
        try karras.setTimesteps(steps: 25)
        try byClass.setTimesteps(steps: 25)
        #expect(Array(plain.timesteps.prefix(3)) == [999, 959, 919])
        #expect(Array(karras.timesteps.prefix(4)) == [999, 970, 938, 905])
        #expect(byClass.timesteps == karras.timesteps)   // class name keeps the config's karras flag
        #expect((plain as? DPMSolverMultistepScheduler)?.solverOrder == 2)
        #expect((byClass as? DPMSolverMultistepScheduler)?.solverOrder == 3)
        var euler = try SchedulerFactory.make("euler", config: karrasConfig)
        try euler.setTimesteps(steps: 30)
        #expect(euler.timesteps.first == 999 && euler.timesteps.last == 0)
        #expect(abs(euler.timesteps[1] - 964.5517) < 1e-3)
    }

    @Test func stepsMustRunInOrderAndResetRestarts() throws {
        for name in SchedulerFactory.shortNames {
            var s = try SchedulerFactory.make(name, config: sd)
            var g = TorchGenerator(seed: 1)
            let x = try g.randn(shape)
            // Before setTimesteps there is no step 0.
            #expect(throws: DiffusionError.self) { try s.step(modelOutput: x, index: 0, sample: x, generator: &g) }
            try s.setTimesteps(steps: 10)
            #expect(throws: DiffusionError.self) { try s.step(modelOutput: x, index: 1, sample: x, generator: &g) }
            let first = try run(&s, seed: 5)
            // Running again without reset: step 0 is out of order.
            #expect(throws: DiffusionError.self) { try s.step(modelOutput: x, index: 0, sample: x, generator: &g) }
            s.reset()
            let again = try run(&s, seed: 5)
            #expect(bitMismatches(first.scalars, again.scalars) == 0, "\(name): reset() gives an identical rerun")
            try s.setTimesteps(steps: 10)
            let third = try run(&s, seed: 5)
            #expect(bitMismatches(first.scalars, third.scalars) == 0, "\(name): setTimesteps resets too")
            #expect(first.scalars.allSatisfy { $0.isFinite })
        }
    }

    @Test func misuseIsReportedNotTrapped() throws {
        var s = try SchedulerFactory.make("dpm++2m", config: sd)
        try s.setTimesteps(steps: 10)
        var g = TorchGenerator(seed: 1)
        let x = try g.randn(shape), y = try g.randn([1, 4, 8, 9])
        #expect(throws: DiffusionError.self) { try s.step(modelOutput: y, index: 0, sample: x, generator: &g) }
        #expect(throws: DiffusionError.self) { try s.scaleModelInput(x, index: 10) }
        #expect(throws: DiffusionError.self) { try s.scaleModelInput(x, index: -1) }
        #expect(throws: DiffusionError.self) { try s.addNoise(original: x, noise: y) }
        #expect(throws: DiffusionError.self) { try s.setTimesteps(steps: 0) }
        #expect(throws: DiffusionError.self) { try s.setTimesteps(steps: 1001) }
        #expect(throws: DiffusionError.self) { try s.setTimesteps(steps: 10, strength: 0) }
        #expect(throws: DiffusionError.self) { try s.setTimesteps(steps: 10, strength: 0.05) }   // no step left
        #expect(throws: DiffusionError.self) { try s.setTimesteps(steps: 10, strength: 1.5) }
        #expect(throws: DiffusionError.self) { try DDIMScheduler(config: sd, eta: -1) }
        // A multistep history may not change shape mid-run.
        try s.setTimesteps(steps: 10)
        _ = try s.step(modelOutput: x, index: 0, sample: x, generator: &g)
        let z = try g.randn([1, 4, 4, 4])
        #expect(throws: DiffusionError.self) { try s.step(modelOutput: z, index: 1, sample: z, generator: &g) }
    }

    @Test func stochasticSchedulersRequireAGenerator() throws {
        var a = try SchedulerFactory.make("euler-a", config: sd)
        var d = try SchedulerFactory.make("ddim", config: sd, eta: 0.3)
        var e = try SchedulerFactory.make("ddim", config: sd)
        #expect(a.isStochastic && d.isStochastic && !e.isStochastic)
        try a.setTimesteps(steps: 5)
        try d.setTimesteps(steps: 5)
        try e.setTimesteps(steps: 5)
        var g = TorchGenerator(seed: 3)
        let x = try g.randn(shape)
        #expect(throws: DiffusionError.self) { try a.step(modelOutput: x, index: 0, sample: x) }
        #expect(throws: DiffusionError.self) { try d.step(modelOutput: x, index: 0, sample: x) }
        let viaConvenience = try e.step(modelOutput: x, index: 0, sample: x)
        e.reset()
        let viaGenerator = try e.step(modelOutput: x, index: 0, sample: x, generator: &g)
        #expect(bitMismatches(viaConvenience.scalars, viaGenerator.scalars) == 0)
    }

    @Test func img2imgTruncatesLikeGetTimesteps() throws {
        for name in SchedulerFactory.shortNames {
            var full = try SchedulerFactory.make(name, config: sd)
            var part = try SchedulerFactory.make(name, config: sd)
            try full.setTimesteps(steps: 20)
            try part.setTimesteps(steps: 20, strength: 0.6)
            // init_timestep = int(20·0.6) = 12 → t_start = 8; PNDM's list has one extra entry.
            #expect(Array(full.timesteps.dropFirst(8)) == part.timesteps, "\(name)")
            #expect(full.sigmas == part.sigmas, "\(name): σ table is the full one")
        }
    }

    @Test func unsupportedOptionsAreRejectedWithTheirField() {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        var c = sd
        c.algorithmType = .sdeDpmsolverPlusPlus
        #expect(message { _ = try DPMSolverMultistepScheduler(config: c) }.contains("algorithm_type"))
        c = sd
        c.useExponentialSigmas = true
        #expect(message { _ = try EulerDiscreteScheduler(config: c) }.contains("use_exponential_sigmas"))
        #expect(message { _ = try DPMSolverMultistepScheduler(config: c) }.contains("use_exponential_sigmas"))
        c = sd
        c.predictionType = .sample
        #expect(message { _ = try EulerAncestralDiscreteScheduler(config: c) }.contains("prediction_type"))
        #expect(message { _ = try PNDMScheduler(config: c) }.contains("prediction_type"))
        c = sd
        c.solverOrder = 4
        #expect(message { _ = try DPMSolverMultistepScheduler(config: c) }.contains("solver_order"))
        c = sd
        c.skipPRKSteps = false
        #expect(message { var p = try PNDMScheduler(config: c); try p.setTimesteps(steps: 3) }.contains("skip_prk_steps"))
    }

    @Test func ddimInversionUndoesAnEtaZeroStepAtTheSameEpsilon() throws {
        // With a constant ε the inversion step is the exact inverse of the DDIM step.
        var ddim = try DDIMScheduler(config: sd)
        try ddim.setTimesteps(steps: 10)
        var g = TorchGenerator(seed: 11)
        let x = try g.randn(shape), eps = try g.randn(shape)
        let i = 3
        let t = Int(ddim.timesteps[i])
        for k in 0..<i { _ = try ddim.step(modelOutput: eps, index: k, sample: x) }
        let prev = try ddim.step(modelOutput: eps, index: i, sample: x)
        // prev is at t − 100; inverting to t with the same ε returns x.
        let back = try ddim.invertStep(modelOutput: eps, timestep: t, sample: prev)
        let (err, mag) = maxAbsError(back.scalars, x.scalars)
        #expect(err <= 1e-5 * mag)
        #expect(throws: DiffusionError.self) { try ddim.invertStep(modelOutput: eps, timestep: 1000, sample: x) }
    }
}
