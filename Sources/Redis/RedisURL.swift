/// Where a Redis server is and how to log in: `redis://[[user]:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    /// Host name or address.
    public var host: String
    /// TCP port.
    public var port: Int
    /// ACL user name, if any.
    public var user: String?
    /// Password, if any (never printed).
    public var password: String?
    /// Database number for SELECT.
    public var database: Int

    /// Makes a URL from parts.
    public init(
        host: String = "127.0.0.1", port: Int = 6379, user: String? = nil, password: String? = nil,
        database: Int = 0
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses a `redis://` URL; the error names what is wrong.
    public init(parsing text: String) throws(RedisError) {
        guard text.hasPrefix("redis://") else {
            throw RedisError(.invalidURL, "'\(RedisURL.redact(text))' must start with redis://")
        }
        var rest = Substring(text.dropFirst("redis://".count))
        var user: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let db = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !db.isEmpty {
                guard let number = Int(db), number >= 0 else {
                    throw RedisError(.invalidURL, "database '\(db)' is not a non-negative number")
                }
                database = number
            }
        }
        var host = String(rest)
        var port = 6379
        if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            let portText = rest[rest.index(after: colon)...]
            guard let number = Int(portText), (1...65535).contains(number) else {
                throw RedisError(.invalidURL, "port '\(portText)' is not in 1-65535")
            }
            port = number
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else {
            throw RedisError(.invalidURL, "host is missing or invalid in '\(RedisURL.redact(text))'")
        }
        self.init(host: host, port: port, user: user, password: password, database: database)
    }

    private static func redact(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        return "redis://***" + text[at...]
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        let credentials = password == nil ? "" : "\(user ?? ""):***@"
        return "redis://\(credentials)\(host):\(port)/\(database)"
    }
}
