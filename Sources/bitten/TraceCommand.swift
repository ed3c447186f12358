import ArgumentParser
import Foundation

/// `bitten trace ID`: a signal's or a fire's flight record as a readable timeline.
struct Trace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show what happened to a signal (its intake, refused attempts and fires) or a fire (F-…: checks, command, answers, close), step by step."
    )
    @OptionGroup var options: ConfigOptions
    @Argument(help: "A signal id, or a fire id (F-YYYYMMDD-SS-NNNNNN).") var id: String
    @Option(help: "Fires of a signal to show (1-1000).") var limit = 20
    @Flag(help: "Print the raw JSON.") var json = false

    func run() async throws {
        let client = try APIClient(options)
        let isFire = id.hasPrefix("F-")
        let path = isFire ? "/fires/\(id)/trace" : "/signals/\(id)/trace?limit=\(limit)"
        if json { return try await client.call("GET", path) }
        let (status, data) = try await client.send("GET", path)
        guard status == 200, let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            print(String(decoding: data, as: UTF8.self))
            throw ExitCode(1)
        }
        if isFire {
            Self.printFire(body)
            return
        }
        print("signal \(id)")
        for step in body["steps"] as? [[String: Any]] ?? [] { Self.printStep(step, indent: "  ") }
        let fires = body["fires"] as? [[String: Any]] ?? []
        let total = body["total_fires"] as? Int ?? fires.count
        print("  \(total) fire(s)\(total > fires.count ? ", the first \(fires.count) shown (--limit)" : "")")
        for fire in fires { Self.printFire(fire, indent: "  ") }
    }

    static func printFire(_ fire: [String: Any], indent: String = "") {
        print("\(indent)fire \(fire["fire_id"] as? String ?? "?")")
        for step in fire["steps"] as? [[String: Any]] ?? [] { printStep(step, indent: indent + "  ") }
    }

    /// `14:03:07.125  checks  balance=10000 lot=0.5 …` (the step's fields sorted, the long ones last).
    static func printStep(_ step: [String: Any], indent: String) {
        let at = step["at"] as? Double ?? 0
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        formatter.timeZone = TimeZone(identifier: "UTC")
        let data = step["data"] as? [String: String] ?? [:]
        let keys = data.keys.sorted {
            (data[$0]?.count ?? 0 > 40 ? 1 : 0, $0) < (data[$1]?.count ?? 0 > 40 ? 1 : 0, $1)
        }
        let short = keys.filter { (data[$0]?.count ?? 0) <= 40 }.map { "\($0)=\(data[$0] ?? "")" }
        let name = (step["step"] as? String ?? "?").padding(toLength: 16, withPad: " ", startingAt: 0)
        print(
            "\(indent)\(formatter.string(from: Date(timeIntervalSince1970: at)))  \(name)\(short.joined(separator: " "))"
        )
        for key in keys where (data[key]?.count ?? 0) > 40 { print("\(indent)    \(key): \(data[key] ?? "")") }
    }
}
