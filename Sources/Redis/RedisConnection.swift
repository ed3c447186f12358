import CHiredis

#if canImport(Glibc)
    import Glibc
#endif

/// One blocking connection to Redis over hiredis. Not thread-safe: it belongs to one thread at a
/// time (a `RedisClient` worker, or the caller's own thread in tools and benchmarks).
public final class RedisConnection {
    private var context: UnsafeMutablePointer<redisContext>?
    /// Where this connection points.
    public let url: RedisURL
    /// True once an I/O error has made the connection unusable.
    public private(set) var isBroken = false
    private var scriptSHAs: [String: String] = [:]
    /// The arguments of the batch being sent; its memory is reused by the next (`ArgumentBuffer.reset`).
    private var batch = ArgumentBuffer()

    /// Connects, then sends AUTH and SELECT as the URL asks.
    public init(url: RedisURL, timeout: Duration = .seconds(2)) throws(RedisError) {
        self.url = url
        let tv = timeval(
            tv_sec: Int(timeout.components.seconds),
            tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        guard let ctx = redisConnectWithTimeout(url.host, Int32(url.port), tv) else {
            throw RedisError(.connectionFailed, "\(url.host):\(url.port): out of memory")
        }
        if ctx.pointee.err != 0 {
            let reason = RedisConnection.errorText(ctx)
            redisFree(ctx)
            throw RedisError(.connectionFailed, "\(url.host):\(url.port): \(reason)")
        }
        context = ctx
        _ = redisSetTimeout(ctx, tv)
        if let password = url.password {
            let args = url.user.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            do {
                try command(args).orThrow()
            } catch {
                close()
                throw RedisError(.connectionFailed, "AUTH refused: \(error.message)")
            }
        }
        if url.database != 0 {
            try command(["SELECT", String(url.database)]).orThrow()
        }
    }

    deinit { close() }

    /// Closes the connection.
    public func close() {
        if let ctx = context { redisFree(ctx) }
        context = nil
        isBroken = true
    }

    /// Sets the read/write timeout of later commands (nil: wait forever).
    public func setTimeout(_ timeout: Duration?) {
        guard let ctx = context else { return }
        let value = timeout ?? .zero
        _ = redisSetTimeout(
            ctx,
            timeval(
                tv_sec: Int(value.components.seconds),
                tv_usec: Int(value.components.attoseconds / 1_000_000_000_000)))
    }

    /// The socket descriptor (for shutting a blocked reader down from another thread).
    var fileDescriptor: Int32 { context?.pointee.fd ?? -1 }

    static func errorText(_ ctx: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: ctx.pointee.errstr) { raw in
            let bytes = raw.prefix(while: { $0 != 0 })
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    private func liveContext() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        guard let ctx = context, !isBroken else {
            throw RedisError(.io, "connection to \(url.host):\(url.port) is closed")
        }
        return ctx
    }

    private func ioFailure(_ ctx: UnsafeMutablePointer<redisContext>) -> RedisError {
        let reason = RedisConnection.errorText(ctx)
        isBroken = true
        return RedisError(.io, "\(url.host):\(url.port): \(reason.isEmpty ? "connection lost" : reason)")
    }

    /// Runs one command (`redisCommandArgv`). Error replies come back as `.error`, not thrown.
    public func command(_ args: [String]) throws(RedisError) -> RedisReply {
        let ctx = try liveContext()
        var arguments = ArgumentBuffer()
        arguments.beginCommand()
        for arg in args {
            var text = arg
            text.withUTF8 { arguments.append($0) }
        }
        let raw = arguments.withArgv { argv, lengths in redisCommandArgv(ctx, Int32(args.count), argv, lengths) }
        guard let raw else { throw ioFailure(ctx) }
        defer { freeReplyObject(raw) }
        return RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Runs one command with binary-safe arguments.
    public func command(bytes args: [[UInt8]]) throws(RedisError) -> RedisReply {
        let ctx = try liveContext()
        var arguments = ArgumentBuffer()
        arguments.beginCommand()
        for arg in args { arg.withUnsafeBufferPointer { arguments.append($0) } }
        let raw = arguments.withArgv { argv, lengths in redisCommandArgv(ctx, Int32(args.count), argv, lengths) }
        guard let raw else { throw ioFailure(ctx) }
        defer { freeReplyObject(raw) }
        return RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Sends every command in one write (`redisAppendCommandArgv`), then reads the replies in order
    /// (`redisGetReply`). All arguments are copied once into one buffer for the whole batch.
    public func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        try pipeline(joining: [commands])
    }

    /// Pipelines the commands of `groups` one group after the other, as one batch (the groups are not
    /// joined into one array first: a commit round's parts go out as they are).
    public func pipeline(joining groups: [[[String]]]) throws(RedisError) -> [RedisReply] {
        defer { batch.reset() }
        for group in groups {
            for command in group {
                batch.beginCommand()
                for arg in command {
                    var text = arg
                    text.withUTF8 { batch.append($0) }
                }
            }
        }
        return try send(&batch)
    }

    /// Pipelines binary-safe commands.
    public func pipeline(bytes commands: [[[UInt8]]]) throws(RedisError) -> [RedisReply] {
        defer { batch.reset() }
        for command in commands {
            batch.beginCommand()
            for arg in command { arg.withUnsafeBufferPointer { batch.append($0) } }
        }
        return try send(&batch)
    }

    private func send(_ arguments: inout ArgumentBuffer) throws(RedisError) -> [RedisReply] {
        let ctx = try liveContext()
        let commands = arguments.commands
        let appended: Bool = arguments.withArgv { argv, lengths in
            for (start, count) in commands {
                guard redisAppendCommandArgv(ctx, Int32(count), argv + start, lengths + start) == REDIS_OK else {
                    return false
                }
            }
            return true
        }
        guard appended else { throw ioFailure(ctx) }
        var replies: [RedisReply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else { throw ioFailure(ctx) }
            replies.append(RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Runs `commands` atomically in MULTI … EXEC and returns EXEC's replies, one per command.
    public func transaction(_ commands: [[String]]) throws(RedisError) -> [RedisReply] {
        try Self.execResult(try pipeline([["MULTI"]] + commands + [["EXEC"]]))
    }

    /// EXEC's replies out of the replies to MULTI, the queued commands and EXEC; throws when the
    /// transaction was refused or aborted.
    public static func execResult(_ replies: [RedisReply]) throws(RedisError) -> [RedisReply] {
        for reply in replies.dropLast() {
            if case .error(let message) = reply {
                throw RedisError(.server, "transaction refused: \(message)")
            }
        }
        switch replies.last {
        case .array(let items)?: return items
        case .null?: throw RedisError(.transactionAborted, "EXEC returned nil (a WATCHed key changed)")
        case .error(let message)?: throw RedisError(.server, "EXEC failed: \(message)")
        default: throw RedisError(.unexpectedReply, "EXEC returned \(replies.last?.description ?? "nothing")")
        }
    }

    /// The SHA of `script`, loaded with SCRIPT LOAD the first time this connection needs it. For
    /// pipelined EVALSHA calls; a `NOSCRIPT` reply means the server lost its scripts (a restart or
    /// SCRIPT FLUSH): call `forgetScripts()` and run the calls again.
    public func scriptSHA(_ script: RedisScript) throws(RedisError) -> String {
        if let known = scriptSHAs[script.source] { return known }
        guard let loaded = try command(["SCRIPT", "LOAD", script.source]).orThrow().string else {
            throw RedisError(.unexpectedReply, "SCRIPT LOAD returned no SHA")
        }
        scriptSHAs[script.source] = loaded
        return loaded
    }

    /// The server's version (`INFO server`'s `redis_version`) as numbers, e.g. `[7, 0, 15]`.
    public func serverVersion() throws(RedisError) -> [Int] {
        guard let info = try command(["INFO", "server"]).orThrow().string, let version = Self.version(fromInfo: info)
        else {
            throw RedisError(.unexpectedReply, "INFO server has no redis_version")
        }
        return version
    }

    /// `redis_version` of an INFO text as numbers, or nil when it has none.
    public static func version(fromInfo info: String) -> [Int]? {
        guard let text = infoField("redis_version", in: info) else { return nil }
        let numbers = text.split(separator: ".").map { Int($0) }
        guard !numbers.isEmpty, !numbers.contains(nil) else { return nil }
        return numbers.compactMap { $0 }
    }

    /// The value of `name` in an INFO reply's `name:value` lines, or nil when it has none.
    public static func infoField(_ name: String, in info: String) -> String? {
        let prefix = name + ":"
        for line in info.split(whereSeparator: { $0.isNewline }) where line.hasPrefix(prefix) {
            return String(line.dropFirst(prefix.count))
        }
        return nil
    }

    /// Forgets every script SHA, so that the next use loads the script again.
    public func forgetScripts() { scriptSHAs = [:] }

    /// Whether `reply` says the server does not know the script.
    public static func isNoScript(_ reply: RedisReply) -> Bool {
        if case .error(let message) = reply { return message.hasPrefix("NOSCRIPT") }
        return false
    }

    /// Runs a Lua script by its SHA (EVALSHA), loading it first when the server does not know it.
    public func evaluate(_ script: RedisScript, keys: [String] = [], args: [String] = []) throws(RedisError)
        -> RedisReply
    {
        for _ in 0..<2 {
            let reply = try command(["EVALSHA", try scriptSHA(script), String(keys.count)] + keys + args)
            guard !Self.isNoScript(reply) else {
                forgetScripts()
                continue
            }
            return reply
        }
        throw RedisError(.server, "script could not be loaded")
    }

    /// Reads one more reply without sending anything (pub/sub messages).
    public func readReply() throws(RedisError) -> RedisReply {
        let ctx = try liveContext()
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(ctx, &raw) == REDIS_OK, let raw else { throw ioFailure(ctx) }
        defer { freeReplyObject(raw) }
        return RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            guard let str = r.str else { return .string([]) }
            return .string(Array(UnsafeRawBufferPointer(start: str, count: r.len)))
        case REDIS_REPLY_STATUS:
            return .status(r.str.map { text(from: $0, count: r.len) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(r.str.map { text(from: $0, count: r.len) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(Int(r.integer))
        case REDIS_REPLY_ARRAY:
            var items: [RedisReply] = []
            items.reserveCapacity(r.elements)
            for index in 0..<r.elements {
                if let element = r.element[index] { items.append(convert(element)) } else { items.append(.null) }
            }
            return .array(items)
        default:
            return .null
        }
    }

    private static func text(from pointer: UnsafeMutablePointer<CChar>, count: Int) -> String {
        String(decoding: UnsafeRawBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}
