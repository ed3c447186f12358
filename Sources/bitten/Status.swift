import ArgumentParser
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `bitten status`: what is running and healthy, read from the running system's `/health`.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the services, nodes and health of a running bitten.")

    @OptionGroup var options: ConfigOptions
    @Flag(help: "Print the raw JSON.") var json = false

    func run() async throws {
        let config = try resolveOrExit(options)
        let host = config.httpHost == "0.0.0.0" ? "127.0.0.1" : config.httpHost
        guard let url = URL(string: "http://\(host):\(config.httpPort)/health") else { throw ExitCode(2) }
        let data: Data
        do {
            (data, _) = try await URLSession.shared.data(from: url)
        } catch {
            print("bitten is not reachable at \(url): \(error.localizedDescription)")
            throw ExitCode(1)
        }
        if json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let body = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            print("unexpected /health answer")
            throw ExitCode(1)
        }
        let status = body["status"] as? String ?? "?"
        let score = (body["health_score"] as? Int).map(String.init) ?? "-"
        print("status: \(status)   health score: \(score)   version: \(body["version"] as? String ?? "?")")
        if let redis = body["redis"] as? [String: Any] {
            print(
                "redis:  \(redis["reachable"] as? Bool == true ? "reachable" : "UNREACHABLE") (\(redis["state"] as? String ?? ""))"
            )
        }
        if let nodes = body["nodes"] as? [String: Any] {
            print("nodes:  \(nodes["online"] as? Int ?? 0) online of \(nodes["total"] as? Int ?? 0)")
        }
        print("")
        print(
            "SERVICE".padding(toLength: 20, withPad: " ", startingAt: 0)
                + "STATE".padding(toLength: 10, withPad: " ", startingAt: 0)
                + "IN".padding(toLength: 12, withPad: " ", startingAt: 0)
                + "OUT".padding(toLength: 12, withPad: " ", startingAt: 0) + "ERRORS")
        for service in body["services"] as? [[String: Any]] ?? [] {
            let name = service["name"] as? String ?? "?"
            let state = service["state"] as? String ?? "?"
            let input = String(service["messages_in"] as? Int ?? 0)
            let output = String(service["messages_out"] as? Int ?? 0)
            let errors = String(service["errors"] as? Int ?? 0)
            print(
                name.padding(toLength: 20, withPad: " ", startingAt: 0)
                    + state.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + input.padding(toLength: 12, withPad: " ", startingAt: 0)
                    + output.padding(toLength: 12, withPad: " ", startingAt: 0) + errors)
        }
        if status != "healthy" { throw ExitCode(1) }
    }
}
