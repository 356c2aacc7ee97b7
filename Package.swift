// swift-tools-version:6.0
import PackageDescription

// Numeric modules compile for Haswell-class x86-64 (AVX2, FMA, F16C): about 7x faster Float16
// conversion and faster SIMD loops than the baseline target (measured; see docs/architecture.md).
let numericFlags: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"], .when(platforms: [.linux]))]

let package = Package(
    name: "llmga",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "llmga", targets: ["llmga"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Workflow", targets: ["Workflow"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Tensor", targets: ["Tensor"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
        .library(name: "Prompter", targets: ["Prompter"]),
    ],
    dependencies: [
        .package(path: "Plugins/NodeKit"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.0.0"..<"5.0.0"),
    ],
    targets: [
        // System libraries and C shims.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CImageCodecs", path: "Sources/CImageCodecs",
                cSettings: [.unsafeFlags(["-I/usr/include/libpng16", "-I/usr/include/x86_64-linux-gnu"])],
                linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("tiff")]),

        // Hand-written CPU kernels (blocked attention, Winograd transforms): one source compiled per
        // instruction set (AVX-512, AVX2+FMA, baseline) with the variant chosen at run time by cpuid.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Libraries of ours. Tensor and Imaging import nothing of ours.
        .target(name: "Tensor", dependencies: ["CBLAS"], swiftSettings: numericFlags),
        .target(name: "Imaging", dependencies: ["CImageCodecs"]),
        // Stable Diffusion 1.5 family: tokenizer, text encoder, UNet, VAE, schedulers, pipelines.
        // The bundled CLIP BPE vocabulary (for single-file checkpoints) is a resource of Diffusion:
        // SwiftPM only bundles resources from inside a target's folder.
        .target(name: "Diffusion", dependencies: ["Tensor", "CKernels"], resources: [.copy("Resources/clip")], swiftSettings: numericFlags),
        // The LLMGA MLLM: tokenizers, chat templates, LLM decoders, vision tower, remote backend.
        .target(name: "Prompter", dependencies: ["Tensor", "Imaging"], swiftSettings: numericFlags),
        .target(name: "Workflow", dependencies: [
            .product(name: "NodeKit", package: "NodeKit"),
            .product(name: "Yams", package: "Yams"),
        ]),
        .target(name: "Engine", dependencies: [
            "Workflow",
            .product(name: "NodeKit", package: "NodeKit"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // Node packs linked into the binary.
        .target(name: "CoreNodes", dependencies: [
            .product(name: "NodeKit", package: "NodeKit"), "Imaging",
        ], path: "Plugins/CoreNodes"),

        .target(name: "DiffusionNodes", dependencies: [
            .product(name: "NodeKit", package: "NodeKit"), "Diffusion", "Tensor",
        ], path: "Plugins/DiffusionNodes"),

        .target(name: "PrompterNodes", dependencies: [
            .product(name: "NodeKit", package: "NodeKit"), "Prompter", "Imaging",
        ], path: "Plugins/PrompterNodes"),

        .executableTarget(name: "llmga", dependencies: [
            "Engine", "Workflow", "CoreNodes", "DiffusionNodes", "PrompterNodes", "Imaging",
            .product(name: "NodeKit", package: "NodeKit"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "WorkflowTests", dependencies: ["Workflow", .product(name: "NodeKit", package: "NodeKit")]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Workflow", "CoreNodes", .product(name: "NodeKit", package: "NodeKit")]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CoreNodesTests", dependencies: ["CoreNodes", "Imaging", .product(name: "NodeKit", package: "NodeKit")]),
        .testTarget(name: "TensorTests", dependencies: ["Tensor"], resources: [.copy("Fixtures")]),
        // End-to-end tests run the llmga binary (the dependency makes `swift test` build it).
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "Tensor", "CKernels"], resources: [.copy("Fixtures")]),
        // Shared by test targets: a scripted HTTP server on 127.0.0.1 for the remote prompter backend.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "PrompterTests", dependencies: ["Prompter", "Tensor", "Imaging", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["Imaging", "Tensor", "TestSupport", "llmga"]),
    ]
)
