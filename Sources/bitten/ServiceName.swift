import ArgumentParser

/// Services that `bitten run` can start.
enum ServiceName: String, CaseIterable, ExpressibleByArgument {
    case gateway, telemetry, confirmations, nodes, monitor, citadel, trade, http, telegram
}
