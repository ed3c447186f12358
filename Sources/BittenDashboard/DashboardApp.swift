import BittenCore
import BittenServices
import Foundation
import Hummingbird
import Logging

/// Builds the HTTP API (Hummingbird 2).
public enum DashboardApp {
    /// The application, ready to run as a `Service`. `onRunning` receives the bound port.
    public static func make(
        _ deps: DashboardDependencies, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        _ = ProcessStats.started
        let router = Router()
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        if deps.protectReads, let token = deps.apiToken, !token.isEmpty {
            router.add(middleware: ReadTokenMiddleware(token: token))
        }
        // The dashboard's files, for what no route answers (inside the error middleware, which would otherwise
        // turn the router's 404 into a JSON answer first; behind the read token like any read).
        router.add(
            middleware: FileMiddleware(
                DashboardResources.publicFolder, cacheControl: CacheControl([(MediaType(type: .any), [.noCache])]),
                searchForIndexHtml: true, logger: logger))
        router.get("/health") { _, _ in
            let report = await deps.healthReport()
            return try json(report, status: report.redis.reachable ? .ok : .serviceUnavailable)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: deps.metricsText())))
        }
        router.get("/services") { _, _ in try json(["services": deps.board.all]) }
        NodeRoutes.add(to: router, deps)
        TradeRoutes.add(to: router, deps)
        CitadelRoutes.add(to: router, deps)
        LiveRoutes.add(to: router, deps)
        deps.board.register("http")
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "bitten"),
            onServerRunning: { channel in
                deps.board.set("http", .running)
                await onRunning(channel.localAddress?.port ?? port)
            },
            logger: logger)
    }
}
