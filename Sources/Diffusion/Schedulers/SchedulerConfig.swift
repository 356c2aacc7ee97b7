import Foundation

/// A diffusers `scheduler/scheduler_config.json`.
///
/// Every field that the JSON may leave out is optional here, because diffusers resolves a missing
/// key to the default of the scheduler class that is *built*, not of the class named in
/// `_class_name`: loading SD1.5's PNDM config into `EulerDiscreteScheduler` gives Euler's default
/// `timestep_spacing` ("linspace"), while PNDM and DDIM get "leading" (diffusers records absent keys
/// in `_use_default_values` and drops them in `from_config`). The `resolved…` accessors and the
/// schedulers apply each class's defaults. Keys diffusers does not know for a class are ignored, as
/// diffusers ignores them.
public struct SchedulerConfig: Sendable, Equatable {
    public enum BetaSchedule: String, Sendable, CaseIterable { case linear, scaledLinear = "scaled_linear", squaredcosCapV2 = "squaredcos_cap_v2" }
    public enum TimestepSpacing: String, Sendable, CaseIterable { case leading, trailing, linspace }
    public enum PredictionType: String, Sendable, CaseIterable { case epsilon, vPrediction = "v_prediction", sample }
    public enum FinalSigmasType: String, Sendable, CaseIterable { case zero, sigmaMin = "sigma_min" }
    public enum AlgorithmType: String, Sendable, CaseIterable {
        case dpmsolverPlusPlus = "dpmsolver++", dpmsolver, sdeDpmsolverPlusPlus = "sde-dpmsolver++", sdeDpmsolver = "sde-dpmsolver", deis
    }
    public enum SolverType: String, Sendable, CaseIterable { case midpoint, heun, logrho, bh1, bh2 }
    public enum InterpolationType: String, Sendable, CaseIterable { case linear, logLinear = "log_linear" }
    public enum TimestepType: String, Sendable, CaseIterable { case discrete, continuous }

    /// `_class_name` (e.g. "PNDMScheduler"); nil when the JSON has none.
    public var className: String?

    // Training schedule (all classes; diffusers defaults 1000, 0.0001, 0.02, linear).
    public var numTrainTimesteps: Int?
    public var betaStart: Double?
    public var betaEnd: Double?
    public var betaSchedule: BetaSchedule?
    /// Explicit betas (overrides beta_start/beta_end/beta_schedule); one per training timestep.
    public var trainedBetas: [Double]?
    public var rescaleBetasZeroSNR: Bool?

    // Inference timesteps.
    public var stepsOffset: Int?
    public var timestepSpacing: TimestepSpacing?
    public var predictionType: PredictionType?

    // DDIM / PNDM.
    public var setAlphaToOne: Bool?
    public var skipPRKSteps: Bool?
    public var clipSample: Bool?
    public var clipSampleRange: Double?
    public var thresholding: Bool?
    public var dynamicThresholdingRatio: Double?
    public var sampleMaxValue: Double?

    // Sigma schedules (Euler, DPM-Solver).
    public var useKarrasSigmas: Bool?
    public var useExponentialSigmas: Bool?
    public var useBetaSigmas: Bool?
    public var useLuLambdas: Bool?
    public var useFlowSigmas: Bool?
    public var sigmaMin: Double?
    public var sigmaMax: Double?
    public var finalSigmasType: FinalSigmasType?
    public var interpolationType: InterpolationType?
    public var timestepType: TimestepType?

    // DPM-Solver.
    public var solverOrder: Int?
    public var algorithmType: AlgorithmType?
    public var solverType: SolverType?
    public var lowerOrderFinal: Bool?
    public var eulerAtFinal: Bool?
    public var lambdaMinClipped: Double?
    public var varianceType: String?
    public var useDynamicShifting: Bool?

    /// The file the config was read from (for error messages), if any.
    public var sourcePath: String?

    /// An empty config: every field takes the built class's diffusers default.
    public init() {}

    /// SD1.5's `scheduler/scheduler_config.json` (runwayml/stable-diffusion-v1-5, diffusers 0.6.0).
    public static var stableDiffusion15: SchedulerConfig {
        var c = SchedulerConfig()
        c.className = "PNDMScheduler"
        c.numTrainTimesteps = 1000
        c.betaStart = 0.00085
        c.betaEnd = 0.012
        c.betaSchedule = .scaledLinear
        c.setAlphaToOne = false
        c.skipPRKSteps = true
        c.stepsOffset = 1
        c.clipSample = false
        return c
    }

    // MARK: Resolved values shared by all classes

    public var resolvedNumTrainTimesteps: Int { numTrainTimesteps ?? 1000 }
    public var resolvedBetaStart: Double { betaStart ?? 0.0001 }
    public var resolvedBetaEnd: Double { betaEnd ?? 0.02 }
    public var resolvedBetaSchedule: BetaSchedule { betaSchedule ?? .linear }
    public var resolvedStepsOffset: Int { stepsOffset ?? 0 }
    public var resolvedPredictionType: PredictionType { predictionType ?? .epsilon }

    /// A `DiffusionError` naming the source file and the field.
    func error(_ field: String, _ message: String) -> DiffusionError {
        DiffusionError("scheduler config field '\(field)': \(message)", file: sourcePath)
    }

    /// Checks the values every scheduler relies on (ranges, lengths).
    func validateCommon() throws(DiffusionError) {
        let n = resolvedNumTrainTimesteps
        guard n >= 2 else { throw error("num_train_timesteps", "must be at least 2, got \(n)") }
        guard n <= 100_000 else { throw error("num_train_timesteps", "\(n) is too large (at most 100000)") }
        if let tb = trainedBetas {
            guard tb.count == n else {
                throw error("trained_betas", "has \(tb.count) values but num_train_timesteps is \(n)")
            }
            for (i, b) in tb.enumerated() where !(b.isFinite && b >= 0 && b < 1) {
                throw error("trained_betas", "value \(i) is \(b); betas must lie in [0, 1)")
            }
        } else {
            for (name, v) in [("beta_start", resolvedBetaStart), ("beta_end", resolvedBetaEnd)] where !(v.isFinite && v >= 0 && v < 1) {
                throw error(name, "must lie in [0, 1), got \(v)")
            }
        }
        guard resolvedStepsOffset >= 0, resolvedStepsOffset < n else {
            throw error("steps_offset", "must lie in 0..<\(n), got \(resolvedStepsOffset)")
        }
    }
}

// MARK: - JSON decoding

extension SchedulerConfig {
    /// Reads and decodes a `scheduler_config.json` file. Errors name the file and the field.
    public init(contentsOfFile path: String) throws(DiffusionError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw DiffusionError("cannot read scheduler config: \(error.localizedDescription)", file: path)
        }
        try self.init(jsonData: data, path: path)
    }

    /// Decodes a scheduler config from JSON text (Python's `Infinity`/`-Infinity`/`NaN`, which
    /// diffusers writes for e.g. `lambda_min_clipped`, are accepted). `path` names the source in errors.
    public init(jsonData: Data, path: String? = nil) throws(DiffusionError) {
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        do {
            self = try decoder.decode(SchedulerConfig.self, from: jsonData)
        } catch let e as DiffusionError {
            throw DiffusionError(e.message, file: path)
        } catch let e as DecodingError {
            throw DiffusionError(Self.describe(e), file: path)
        } catch {
            throw DiffusionError("invalid scheduler config: \(error)", file: path)
        }
        sourcePath = path
    }

    private static func describe(_ e: DecodingError) -> String {
        func field(_ path: [CodingKey]) -> String { path.map(\.stringValue).joined(separator: ".") }
        switch e {
        case let .typeMismatch(type, ctx):
            let expected = type == Bool.self ? "true or false" : type == String.self ? "a string"
                : (type == Int.self ? "an integer" : type == Double.self ? "a number" : "\(type)")
            return ctx.codingPath.isEmpty ? "scheduler config must be a JSON object"
                : "scheduler config field '\(field(ctx.codingPath))': expected \(expected)"
        case let .valueNotFound(_, ctx):
            return "scheduler config field '\(field(ctx.codingPath))': value missing"
        case let .keyNotFound(key, _):
            return "scheduler config: missing field '\(key.stringValue)'"
        case let .dataCorrupted(ctx):
            if ctx.codingPath.isEmpty {
                let detail = (ctx.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return "scheduler config is not valid JSON" + (detail.map { ": \($0)" } ?? "")
            }
            return "scheduler config field '\(field(ctx.codingPath))': \(ctx.debugDescription)"
        @unknown default:
            return "invalid scheduler config: \(e)"
        }
    }
}

private struct ConfigKey: CodingKey {
    var stringValue: String
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

extension SchedulerConfig: Decodable {
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigKey.self)
        func num(_ k: String) throws -> Double? { try c.decodeIfPresent(Double.self, forKey: ConfigKey(k)) }
        func bool(_ k: String) throws -> Bool? { try c.decodeIfPresent(Bool.self, forKey: ConfigKey(k)) }
        func str(_ k: String) throws -> String? { try c.decodeIfPresent(String.self, forKey: ConfigKey(k)) }
        func int(_ k: String) throws -> Int? {
            // Python configs sometimes carry integral floats (1000.0); accept those, reject 1.5.
            guard let d = try num(k) else { return nil }
            guard d.isFinite, d == d.rounded(), abs(d) < 1e15 else {
                throw DiffusionError("scheduler config field '\(k)': expected an integer, got \(d)")
            }
            return Int(d)
        }
        func choice<E: RawRepresentable & CaseIterable>(_ k: String, _ type: E.Type) throws -> E? where E.RawValue == String {
            guard let s = try str(k) else { return nil }
            guard let v = E(rawValue: s) else {
                let allowed = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                throw DiffusionError("scheduler config field '\(k)': unknown value \"\(s)\" (expected one of \(allowed))")
            }
            return v
        }
        className = try str("_class_name")
        numTrainTimesteps = try int("num_train_timesteps")
        betaStart = try num("beta_start")
        betaEnd = try num("beta_end")
        betaSchedule = try choice("beta_schedule", BetaSchedule.self)
        trainedBetas = try c.decodeIfPresent([Double].self, forKey: ConfigKey("trained_betas"))
        rescaleBetasZeroSNR = try bool("rescale_betas_zero_snr")
        stepsOffset = try int("steps_offset")
        timestepSpacing = try choice("timestep_spacing", TimestepSpacing.self)
        predictionType = try choice("prediction_type", PredictionType.self)
        setAlphaToOne = try bool("set_alpha_to_one")
        skipPRKSteps = try bool("skip_prk_steps")
        clipSample = try bool("clip_sample")
        clipSampleRange = try num("clip_sample_range")
        thresholding = try bool("thresholding")
        dynamicThresholdingRatio = try num("dynamic_thresholding_ratio")
        sampleMaxValue = try num("sample_max_value")
        useKarrasSigmas = try bool("use_karras_sigmas")
        useExponentialSigmas = try bool("use_exponential_sigmas")
        useBetaSigmas = try bool("use_beta_sigmas")
        useLuLambdas = try bool("use_lu_lambdas")
        useFlowSigmas = try bool("use_flow_sigmas")
        sigmaMin = try num("sigma_min")
        sigmaMax = try num("sigma_max")
        finalSigmasType = try choice("final_sigmas_type", FinalSigmasType.self)
        interpolationType = try choice("interpolation_type", InterpolationType.self)
        timestepType = try choice("timestep_type", TimestepType.self)
        solverOrder = try int("solver_order")
        algorithmType = try choice("algorithm_type", AlgorithmType.self)
        solverType = try choice("solver_type", SolverType.self)
        lowerOrderFinal = try bool("lower_order_final")
        eulerAtFinal = try bool("euler_at_final")
        lambdaMinClipped = try num("lambda_min_clipped")
        varianceType = try str("variance_type")
        useDynamicShifting = try bool("use_dynamic_shifting")
    }
}
