/// Builds schedulers by diffusers class name or by short sampler name.
///
/// A checkpoint's `scheduler_config.json` fixes the training schedule (betas, steps_offset, …);
/// the sampler is the user's choice, as in ComfyUI/A1111. `make(_:config:)` therefore keeps every
/// schedule field of `config` and only replaces the class — exactly diffusers'
/// `TargetScheduler.from_config(pipe.scheduler.config)`: fields the JSON leaves out take the target
/// class's defaults (see `SchedulerConfig`).
///
/// Short names fix the sampler fully (they override the config's sampler options):
/// | name | class | forced options |
/// |---|---|---|
/// | `pndm` (`plms`) | PNDMScheduler | — |
/// | `ddim` | DDIMScheduler | eta from `eta:` |
/// | `euler` | EulerDiscreteScheduler | use_karras_sigmas false |
/// | `euler-karras` | EulerDiscreteScheduler | use_karras_sigmas true |
/// | `euler-a` (`euler_a`, `euler-ancestral`) | EulerAncestralDiscreteScheduler | — |
/// | `dpm++2m` | DPMSolverMultistepScheduler | solver_order 2, dpmsolver++, use_karras_sigmas false |
/// | `dpm++2m-karras` | DPMSolverMultistepScheduler | solver_order 2, dpmsolver++, use_karras_sigmas true |
///
/// A diffusers class name (`PNDMScheduler`, `DDIMScheduler`, `EulerDiscreteScheduler`,
/// `EulerAncestralDiscreteScheduler`, `DPMSolverMultistepScheduler`) uses the config as is.
public enum SchedulerFactory {
    /// The short names `make` accepts, in display order.
    public static let shortNames = ["pndm", "ddim", "euler", "euler-karras", "euler-a", "dpm++2m", "dpm++2m-karras"]
    /// The diffusers class names `make` accepts.
    public static let classNames = ["PNDMScheduler", "DDIMScheduler", "EulerDiscreteScheduler",
                                    "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler"]

    /// Builds the scheduler `name` (short name or diffusers class name, case-insensitive for short
    /// names) on `config`'s schedule. `eta` applies to DDIM only (0 = deterministic).
    public static func make(_ name: String, config: SchedulerConfig, eta: Double = 0) throws(DiffusionError) -> any Scheduler {
        var c = config
        switch name.lowercased() {
        case "pndm", "plms", "pndmscheduler":
            return try PNDMScheduler(config: c)
        case "ddim", "ddimscheduler":
            return try DDIMScheduler(config: c, eta: eta)
        case "euler":
            return try EulerDiscreteScheduler(config: c, useKarrasSigmas: false)
        case "euler-karras", "euler_karras":
            return try EulerDiscreteScheduler(config: c, useKarrasSigmas: true)
        case "eulerdiscretescheduler":
            return try EulerDiscreteScheduler(config: c)
        case "euler-a", "euler_a", "euler-ancestral", "euler_ancestral", "eulerancestraldiscretescheduler":
            return try EulerAncestralDiscreteScheduler(config: c)
        case "dpm++2m", "dpmpp_2m", "dpm++2m-karras", "dpmpp_2m_karras":
            c.solverOrder = 2
            c.algorithmType = .dpmsolverPlusPlus
            return try DPMSolverMultistepScheduler(config: c, useKarrasSigmas: name.lowercased().hasSuffix("karras"))
        case "dpmsolvermultistepscheduler":
            return try DPMSolverMultistepScheduler(config: c)
        default:
            throw DiffusionError("unknown scheduler \"\(name)\"; expected one of \((shortNames + classNames).joined(separator: ", "))",
                                 file: config.sourcePath)
        }
    }

    /// Builds the scheduler named by the config's `_class_name`.
    public static func make(config: SchedulerConfig, eta: Double = 0) throws(DiffusionError) -> any Scheduler {
        guard let name = config.className else {
            throw config.error("_class_name", "missing; name the scheduler explicitly")
        }
        guard classNames.contains(name) else {
            throw config.error("_class_name", "\"\(name)\" is not supported (supported: \(classNames.joined(separator: ", ")))")
        }
        return try make(name, config: config, eta: eta)
    }
}
