/// The engine's version, recorded in outputs and part of nothing's cache key.
public enum EngineVersion {
    public static let string = "0.1.0"
}
