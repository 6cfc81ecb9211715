// swift-tools-version:6.0
import PackageDescription

// Module graph (one way, top to bottom; see DESIGN.md):
//   cloudfs (exe) -> CloudFS -> FuseKit -> CFuse
//                 -> MetadataServer (Hummingbird)
//                 -> Dashboard (Hummingbird, Mustache; a client of the mounted tree only)
//                 -> CloudEngine -> CloudStore, ImageStore, CloudNetwork, CloudScheduler,
//                                   ISOImage -> CIsofs
//                 -> LibvirtCompute -> CLibvirt
//                 -> HostAgent (gRPC over mutual TLS: the per-host agent's wire)
//   everything    -> CloudCore
let package = Package(
    name: "cloudfs",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "cloudfs", targets: ["cloudfs"]),
        .executable(name: "cloudfs-bench", targets: ["cloudfs-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
    ],
    targets: [
        .systemLibrary(name: "CFuse", path: "Sources/CFuse", pkgConfig: "fuse3",
                       providers: [.apt(["libfuse3-dev"])]),
        .systemLibrary(name: "CLibvirt", path: "Sources/CLibvirt", pkgConfig: "libvirt",
                       providers: [.apt(["libvirt-dev"])]),
        .systemLibrary(name: "CIsofs", path: "Sources/CIsofs", pkgConfig: "libisofs-1",
                       providers: [.apt(["libisofs-dev", "libburn-dev"])]),
        .target(name: "CloudCore"),
        .target(name: "ISOImage", dependencies: ["CloudCore", "CIsofs"]),
        .target(name: "CloudStore", dependencies: [
            "CloudCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "ImageStore", dependencies: [
            "CloudCore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "CloudNetwork", dependencies: ["CloudCore"]),
        .target(name: "CloudScheduler", dependencies: ["CloudCore"]),
        .target(name: "LibvirtCompute", dependencies: [
            "CloudCore", "CLibvirt", .product(name: "Logging", package: "swift-log")]),
        .target(name: "CloudEngine", dependencies: [
            "CloudCore", "CloudStore", "ImageStore", "CloudNetwork", "CloudScheduler", "ISOImage",
            .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "FuseKit", dependencies: ["CFuse", "CloudCore"]),
        .target(name: "HostAgent", dependencies: [
            "CloudCore", .product(name: "GRPCCore", package: "grpc-swift-2"),
            .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
            .product(name: "X509", package: "swift-certificates"), .product(name: "SwiftASN1", package: "swift-asn1"),
            .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "MetadataServer", dependencies: [
            "CloudCore", .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log")]),
        .target(name: "Dashboard", dependencies: [
            "CloudCore", .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Mustache", package: "swift-mustache"), .product(name: "Logging", package: "swift-log")]),
        .target(name: "CloudFS", dependencies: [
            "CloudCore", "FuseKit", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "cloudfs", dependencies: [
            "CloudCore", "CloudEngine", "CloudFS", "FuseKit", "LibvirtCompute", "MetadataServer", "Dashboard",
            "HostAgent", "CloudNetwork",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "cloudfs-bench", dependencies: [
            "CloudCore", "CloudEngine", "LibvirtCompute", "CloudScheduler", "CloudStore", "CloudNetwork", "ImageStore",
            "ISOImage", "FuseKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "CloudTesting", dependencies: ["CloudCore"], path: "Tests/CloudTesting"),
        .testTarget(name: "CloudCoreTests", dependencies: ["CloudCore"]),
        .testTarget(name: "CloudStoreTests", dependencies: [
            "CloudStore", "CloudCore", "CloudTesting", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "ImageStoreTests", dependencies: ["ImageStore", "CloudCore"]),
        .testTarget(name: "CloudNetworkTests", dependencies: ["CloudNetwork", "CloudCore"], exclude: ["Golden"]),
        .testTarget(name: "CloudSchedulerTests", dependencies: ["CloudScheduler", "CloudTesting"]),
        .testTarget(name: "LibvirtComputeTests", dependencies: ["LibvirtCompute", "CloudCore", "CloudTesting"]),
        .testTarget(name: "CloudEngineTests", dependencies: [
            "CloudEngine", "LibvirtCompute", "CloudCore", "CloudTesting", "ISOImage",
            .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "MetadataServerTests", dependencies: [
            "MetadataServer", "CloudCore", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "DashboardTests", dependencies: [
            "Dashboard", "CloudCore", .product(name: "Hummingbird", package: "hummingbird")]),
        .testTarget(name: "MountTests", dependencies: ["CloudCore", "CloudTesting", "FuseKit"]),
        .testTarget(name: "HostAgentTests", dependencies: ["HostAgent", "CloudCore"]),
        .testTarget(name: "CloudFSTests", dependencies: [
            "CloudFS", "FuseKit", "CloudCore", "CloudEngine", "LibvirtCompute", "CloudTesting"]),
    ]
)
