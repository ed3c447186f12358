import Foundation

/// Loads the shared fixtures (`../shared/fixtures` next to the repository).
public enum Fixtures {
    /// The fixtures directory: `BITTEN_FIXTURES` if set, else `../shared/fixtures` from the package root.
    public static var root: URL {
        if let custom = ProcessInfo.processInfo.environment["BITTEN_FIXTURES"] {
            return URL(fileURLWithPath: custom)
        }
        // Sources/BittenTestSupport/Fixtures.swift → package root → ../shared/fixtures
        let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return packageRoot.deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }

    /// The bytes of a fixture, e.g. `data("ea/hello.json")`.
    public static func data(_ relativePath: String) throws -> Data {
        try Data(contentsOf: root.appendingPathComponent(relativePath))
    }

    /// A fixture's bytes as `[UInt8]` with trailing whitespace removed.
    public static func bytes(_ relativePath: String) throws -> [UInt8] {
        var bytes = Array(try data(relativePath))
        while let last = bytes.last, last == 10 || last == 13 || last == 32 { bytes.removeLast() }
        return bytes
    }

    /// The file names (not paths) in a fixture folder, sorted.
    public static func files(in folder: String) throws -> [String] {
        let dir = root.appendingPathComponent(folder)
        return try FileManager.default.contentsOfDirectory(atPath: dir.path)
            .filter { !$0.hasPrefix(".") }
            .filter { name in
                var isDirectory: ObjCBool = false
                _ = FileManager.default.fileExists(
                    atPath: dir.appendingPathComponent(name).path, isDirectory: &isDirectory)
                return !isDirectory.boolValue
            }
            .sorted()
    }

    /// The lines of a JSON-lines fixture.
    public static func lines(_ relativePath: String) throws -> [[UInt8]] {
        try data(relativePath).split(separator: 10).map { Array($0) }.filter { !$0.isEmpty }
    }
}
