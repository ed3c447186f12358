import ArgumentParser

/// The `bitten` command: one executable for the server, its tools and the EA simulator (the benchmarks are
/// `bitten-bench`).
@main
struct Bitten: AsyncParsableCommand {
    static let version = "0.2.0"

    static let configuration = CommandConfiguration(
        commandName: "bitten",
        abstract: "Trading infrastructure for MetaTrader 5 EAs over ZeroMQ, with state in Redis.",
        version: version,
        subcommands: [
            Up.self, Run.self, Status.self, Check.self, Stop.self, Logs.self, Keys.self, User.self, NodeCommand.self,
            Fire.self, Halt.self, CloseOnly.self, Resume.self, ControlShow.self, Trace.self, ReplayCommand.self,
            Simulate.self,
        ]
    )
}
