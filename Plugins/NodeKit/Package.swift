// swift-tools-version:6.0
// NodeKit is the plugin-facing API of llmga. It lives in its own package and is
// built as a dynamic library so that exactly one copy of it exists per process:
// the host and every dynamically loaded node pack link the same libNodeKit.so,
// so protocol conformances and casts work across the dlopen boundary.
// (A .dynamic product inside the host package would be linked statically into
// the host by SwiftPM, and casts across the boundary would fail.)
import PackageDescription

let package = Package(
    name: "NodeKit",
    products: [
        .library(name: "NodeKit", type: .dynamic, targets: ["NodeKit"]),
    ],
    targets: [
        .target(
            name: "NodeKit",
            swiftSettings: [.unsafeFlags(["-enable-library-evolution"])]
        ),
    ]
)
