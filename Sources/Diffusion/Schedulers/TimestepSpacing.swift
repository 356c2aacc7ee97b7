/// The inference timestep tables of diffusers' `set_timesteps`, per spacing, reproduced with the
/// same numpy arithmetic (double precision, round half to even).
enum Timesteps {
    /// DDIM / Euler / Euler ancestral: `N` timesteps, descending, as doubles (integral except
    /// for Euler's float32 linspace, which the caller rounds to Float).
    static func standard(_ spacing: SchedulerConfig.TimestepSpacing, train: Int, steps n: Int, offset: Int) -> [Double] {
        switch spacing {
        case .linspace:
            return NumPy.linspace(0, Double(train - 1), n).reversed()
        case .leading:
            let ratio = train / n
            return (0..<n).reversed().map { Double($0 * ratio + offset) }
        case .trailing:
            return NumPy.arange(Double(train), 0, -(Double(train) / Double(n))).map { NumPy.round($0) - 1 }
        }
    }

    /// PNDM's ascending `_timesteps` (integers).
    static func pndmAscending(_ spacing: SchedulerConfig.TimestepSpacing, train: Int, steps n: Int, offset: Int) -> [Int] {
        switch spacing {
        case .linspace:
            return NumPy.linspace(0, Double(train - 1), n).map { Int(NumPy.round($0)) }
        case .leading:
            let ratio = train / n
            return (0..<n).map { $0 * ratio + offset }
        case .trailing:
            return NumPy.arange(Double(train), 0, -(Double(train) / Double(n))).reversed().map { Int(NumPy.round($0)) - 1 }
        }
    }

    /// DPM-Solver: `N` integer timesteps, descending, from `N + 1` grid points (the last dropped).
    static func dpm(_ spacing: SchedulerConfig.TimestepSpacing, train: Int, last: Int, steps n: Int, offset: Int) -> [Int] {
        switch spacing {
        case .linspace:
            return Array(NumPy.linspace(0, Double(last - 1), n + 1).map { Int(NumPy.round($0)) }.reversed().dropLast())
        case .leading:
            let ratio = last / (n + 1)
            return Array((0...n).reversed().map { $0 * ratio + offset }.dropLast())
        case .trailing:
            return NumPy.arange(Double(last), 0, -(Double(train) / Double(n))).map { Int(NumPy.round($0)) - 1 }
        }
    }
}
