import Foundation

/// The HTTP API's contract, `Resources/openapi.yaml`, served as it is at `/openapi.yaml`. The tests validate
/// live responses against its schemas, so a field renamed in code and not there fails the tests.
enum OpenAPIDocument {
    static let yaml = DashboardResources.text("openapi.yaml")
}

/// The files this module serves, from its resources (`Sources/BittenDashboard/Resources`).
///
/// `public/` is the live dashboard: `index.html`, `dashboard.css` and `dashboard.js`, self-contained (no
/// external scripts, fonts or styles — the machine running Bitten may be offline), served by Hummingbird's
/// `FileMiddleware`. The page listens to `/events` (Server-Sent Events); when the stream fails it polls
/// `/snapshot` every 5 s and says so in the header.
enum DashboardResources {
    /// The folder the dashboard's files are served from.
    static var publicFolder: String { folder.appendingPathComponent("public").path }

    /// A resource file's text (`openapi.yaml`).
    static func text(_ name: String) -> String {
        guard let text = try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8) else {
            preconditionFailure("\(name) is missing from the BittenDashboard resources")
        }
        return text
    }

    /// `Resources/` in the module's bundle (found through a file in it: on Linux the bundle's `resourceURL`
    /// is not the folder SwiftPM copies into).
    private static var folder: URL {
        guard let spec = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "Resources")
        else {
            preconditionFailure("the BittenDashboard resources are missing")
        }
        return spec.deletingLastPathComponent()
    }
}
