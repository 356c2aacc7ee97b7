import Foundation
import Testing
@testable import Diffusion

/// Decoding `scheduler_config.json`, per-class defaults, and error messages.
@Suite struct SchedulerConfigTests {
    func decode(_ json: String, path: String = "unet/scheduler_config.json") throws(DiffusionError) -> SchedulerConfig {
        try SchedulerConfig(jsonData: Data(json.utf8), path: path)
    }

    func expectError(_ json: String, contains parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try decode(json, path: "ckpt/scheduler/scheduler_config.json")
            Issue.record("expected an error for \(json)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.file == "ckpt/scheduler/scheduler_config.json", sourceLocation: sourceLocation)
            for p in parts {
                #expect(error.description.contains(p), "\(error.description) should mention \(p)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func decodesSD15File() throws {
        let path = SchedulerFixtures.path("sd15_scheduler_config.json")
        let c = try SchedulerConfig(contentsOfFile: path)
        #expect(c == { var e = SchedulerConfig.stableDiffusion15; e.sourcePath = path; return e }())
        #expect(c.className == "PNDMScheduler")
        #expect(c.timestepSpacing == nil && c.predictionType == nil)
        #expect(c.trainedBetas == nil)
        #expect(c.sourcePath == path)
    }

    @Test func classDefaultsApplyToMissingKeys() throws {
        let sd = SchedulerConfig.stableDiffusion15
        // SD1.5 json: PNDM and DDIM get "leading" (offset 1), Euler and DPM-Solver "linspace".
        var pndm = try PNDMScheduler(config: sd)
        try pndm.setTimesteps(steps: 50)
        #expect(pndm.timesteps.count == 51)
        #expect(Array(pndm.timesteps.prefix(4)) == [981, 961, 961, 941])
        #expect(pndm.timesteps.last == 1)
        var ddim = try DDIMScheduler(config: sd)
        try ddim.setTimesteps(steps: 50)
        #expect(ddim.timesteps.first == 981 && ddim.timesteps.last == 1)
        #expect(ddim.finalAlphaCumprod == ddim.trainingSchedule.alphasCumprod[0])   // set_alpha_to_one false
        #expect(!ddim.clipSample)
        var euler = try EulerDiscreteScheduler(config: sd)
        try euler.setTimesteps(steps: 30)
        #expect(euler.timesteps.first == 999 && euler.timesteps.last == 0)
        #expect(abs(euler.initNoiseSigma - 14.614647) < 1e-5)
        var dpm = try DPMSolverMultistepScheduler(config: sd)
        try dpm.setTimesteps(steps: 25)
        #expect(Array(dpm.timesteps.prefix(3)) == [999, 959, 919] && dpm.timesteps.last == 40)

        // An empty config: DDIM's own defaults (set_alpha_to_one, clip_sample true; linear betas).
        let bare = try DDIMScheduler(config: SchedulerConfig())
        #expect(bare.finalAlphaCumprod == 1 && bare.clipSample)
        #expect(bare.trainingSchedule.betas.first == 0.0001)
        #expect(try PNDMScheduler(config: SchedulerConfig()).skipPRKSteps == false)
    }

    @Test func decodesEveryField() throws {
        let c = try decode("""
        {"_class_name": "DPMSolverMultistepScheduler", "_diffusers_version": "0.27.0", "num_train_timesteps": 1000.0,
         "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "squaredcos_cap_v2", "trained_betas": null,
         "steps_offset": 1, "timestep_spacing": "trailing", "prediction_type": "v_prediction", "set_alpha_to_one": true,
         "skip_prk_steps": false, "clip_sample": true, "clip_sample_range": 2.0, "thresholding": false,
         "dynamic_thresholding_ratio": 0.995, "sample_max_value": 1.0, "use_karras_sigmas": true,
         "use_exponential_sigmas": false, "use_beta_sigmas": false, "use_lu_lambdas": false, "use_flow_sigmas": false,
         "sigma_min": null, "sigma_max": 10, "final_sigmas_type": "sigma_min", "interpolation_type": "linear",
         "timestep_type": "discrete", "solver_order": 3, "algorithm_type": "dpmsolver++", "solver_type": "heun",
         "lower_order_final": false, "euler_at_final": true, "lambda_min_clipped": -Infinity, "variance_type": null,
         "rescale_betas_zero_snr": true, "use_dynamic_shifting": false, "some_future_key": [1, 2]}
        """)
        #expect(c.className == "DPMSolverMultistepScheduler")
        #expect(c.numTrainTimesteps == 1000 && c.stepsOffset == 1)
        #expect(c.betaSchedule == .squaredcosCapV2 && c.timestepSpacing == .trailing && c.predictionType == .vPrediction)
        #expect(c.setAlphaToOne == true && c.skipPRKSteps == false && c.clipSample == true && c.clipSampleRange == 2)
        #expect(c.useKarrasSigmas == true && c.sigmaMin == nil && c.sigmaMax == 10 && c.finalSigmasType == .sigmaMin)
        #expect(c.solverOrder == 3 && c.algorithmType == .dpmsolverPlusPlus && c.solverType == .heun)
        #expect(c.lowerOrderFinal == false && c.eulerAtFinal == true && c.lambdaMinClipped == -.infinity)
        #expect(c.rescaleBetasZeroSNR == true && c.interpolationType == .linear && c.timestepType == .discrete)
    }

    @Test func badValuesNameFileAndField() {
        expectError(#"{"beta_start": "0.1"}"#, contains: ["beta_start", "expected a number"])
        expectError(#"{"beta_schedule": "cosine"}"#, contains: ["beta_schedule", "\"cosine\"", "scaled_linear"])
        expectError(#"{"timestep_spacing": "uniform"}"#, contains: ["timestep_spacing", "trailing"])
        expectError(#"{"prediction_type": "flow"}"#, contains: ["prediction_type", "v_prediction"])
        expectError(#"{"steps_offset": 1.5}"#, contains: ["steps_offset", "integer"])
        expectError(#"{"set_alpha_to_one": 0}"#, contains: ["set_alpha_to_one", "true or false"])
        expectError(#"{"trained_betas": [0.1, "x"]}"#, contains: ["trained_betas"])
        expectError(#"[1, 2]"#, contains: ["JSON object"])
        expectError(#"{"beta_start": 0.1"#, contains: ["not valid JSON"])
    }

    @Test func missingFileIsNamed() {
        #expect(throws: DiffusionError.self) { try SchedulerConfig(contentsOfFile: "/nonexistent/scheduler_config.json") }
        do {
            _ = try SchedulerConfig(contentsOfFile: "/nonexistent/scheduler_config.json")
        } catch {
            #expect(error.file == "/nonexistent/scheduler_config.json")
        }
    }

    @Test func scheduleValuesAreValidatedWhenBuilding() throws {
        func buildError(_ json: String) -> String {
            do {
                let c = try decode(json, path: "s.json")
                _ = try SchedulerFactory.make("ddim", config: c)
                return ""
            } catch {
                #expect(error.file == "s.json")
                return error.description
            }
        }
        #expect(buildError(#"{"num_train_timesteps": 10, "trained_betas": [0.1, 0.2]}"#).contains("trained_betas"))
        #expect(buildError(#"{"num_train_timesteps": 1}"#).contains("num_train_timesteps"))
        #expect(buildError(#"{"beta_end": 1.5}"#).contains("beta_end"))
        #expect(buildError(#"{"steps_offset": 1000}"#).contains("steps_offset"))
        #expect(buildError(#"{"thresholding": true}"#).contains("thresholding"))
        #expect(buildError(#"{"beta_start": 0.0001}"#).isEmpty)
    }

    @Test func trainedBetasReplaceTheSchedule() throws {
        let betas = (0..<20).map { 0.001 + Double($0) * 0.002 }
        var c = SchedulerConfig()
        c.numTrainTimesteps = 20
        c.trainedBetas = betas
        let s = try TrainingSchedule(config: c)
        #expect(s.betas == betas.map { Float($0) })
        var acc = 1.0
        for (i, b) in betas.enumerated() {
            acc *= Double(1 - Float(b))
            #expect(s.alphasCumprod[i] == Float(acc))
        }
    }
}
