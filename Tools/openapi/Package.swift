// swift-tools-version:6.2
// Builds swift-openapi-generator for `make openapi` only. The product never depends on this package: the
// generated code is committed (Sources/BittenAPI/Generated), so CI does not build the generator.
import PackageDescription

let package = Package(
    name: "BittenOpenAPITools",
    dependencies: [
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3")
    ],
    targets: []
)
