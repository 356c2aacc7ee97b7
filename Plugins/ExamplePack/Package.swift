// swift-tools-version:6.0
// An example node pack loaded at run time: the template for third-party packs.
//
//   swift build -c release --package-path Plugins/ExamplePack
//   llmga nodes example. --plugins Plugins/ExamplePack/.build/release
//
// A pack links the same NodeKit package as llmga (a dynamic library, so one copy exists per
// process) and must be built with the same Swift toolchain as the llmga binary that loads it.
import PackageDescription

let package = Package(
    name: "ExamplePack",
    products: [
        .library(name: "ExamplePack", type: .dynamic, targets: ["ExamplePack"]),
        // Stands in for a pack built against another NodeKit ABI, so the refusal path is tested.
        .library(name: "ExamplePackOtherABI", type: .dynamic, targets: ["ExamplePackOtherABI"]),
    ],
    dependencies: [.package(path: "../NodeKit")],
    targets: [
        .target(name: "ExamplePack", dependencies: [.product(name: "NodeKit", package: "NodeKit")]),
        .target(name: "ExamplePackOtherABI", dependencies: [.product(name: "NodeKit", package: "NodeKit")]),
    ]
)
