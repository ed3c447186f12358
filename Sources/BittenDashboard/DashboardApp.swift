import BittenCore
import BittenServices
import Foundation
import Hummingbird
import Logging
import OpenAPIHummingbird
import OpenAPIRuntime

/// Builds the HTTP API (Hummingbird 2): the operations generated from `openapi.yaml`, the dashboard's files, and the
/// middleware around them.
public enum DashboardApp {
    /// The application, ready to run as a `Service`. `onRunning` receives the bound port.
    public static func make(
        _ deps: DashboardDependencies, host: String, port: Int, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        _ = ProcessStats.started
        let router = try router(
            ports: APIPorts(deps), apiToken: deps.apiToken, protectReads: deps.protectReads, logger: logger)
        deps.board.register(name)
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "bitten"),
            onServerRunning: { channel in
                deps.board.set(name, .running)
                await onRunning(channel.localAddress?.port ?? port)
            },
            logger: logger)
    }

    /// The router: every call passes the error, cache, 405 and access middleware; the dashboard's files answer
    /// what no operation does; the operations (with their JSON body checks) are one route group.
    static func router(
        ports: APIPorts, apiToken: String?, protectReads: Bool, logger: Logger
    ) throws -> Router<BasicRequestContext> {
        let router = Router()
        let routes = RouteTable()
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: JSONErrorMiddleware())
        router.add(middleware: NoCacheMiddleware())
        router.add(middleware: MethodNotAllowedMiddleware(table: routes))
        router.add(middleware: AccessMiddleware(token: apiToken, protectReads: protectReads))
        // The dashboard's files, for what no route answers (inside the error middleware, which would otherwise turn
        // the router's 404 into a JSON answer first; behind the read token like any read).
        router.add(
            middleware: FileMiddleware(
                DashboardResources.publicFolder, cacheControl: CacheControl([(MediaType(type: .any), [.noCache])]),
                searchForIndexHtml: true, logger: logger))
        // The page's old address leads to the page.
        router.get("/dashboard") { request, _ in
            let query = request.uri.query.map { "?" + $0 } ?? ""
            return Response(status: .found, headers: [.location: "/" + query])
        }
        let api = router.group().add(middleware: JSONBodyMiddleware())
        try BittenAPI(ports: ports).registerHandlers(
            on: RecordingTransport(transport: api, table: routes),
            configuration: .init(jsonEncodingOptions: [.sortedKeys]))
        return router
    }
}
