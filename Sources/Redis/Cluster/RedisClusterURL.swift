/// Where a Redis Cluster is: `redis-cluster://[[user]:password@]host:port[,host:port…]`. The nodes are
/// seeds: the client asks the first that answers for the whole map. A cluster has only database 0.
public struct RedisClusterURL: Sendable, Equatable, CustomStringConvertible {
    /// The nodes to learn the cluster from.
    public var seeds: [ClusterEndpoint]
    /// The ACL user, if any.
    public var user: String?
    /// The password, if any.
    public var password: String?

    /// A cluster URL.
    public init(seeds: [ClusterEndpoint], user: String? = nil, password: String? = nil) {
        self.seeds = seeds
        self.user = user
        self.password = password
    }

    /// Parses the URL; the error names what is wrong (and never shows the password).
    public init(parsing text: String) throws(RedisError) {
        let scheme = "redis-cluster://"
        guard text.hasPrefix(scheme) else { throw RedisError(.invalidURL, "a cluster URL must start with \(scheme)") }
        var rest = Substring(text.dropFirst(scheme.count))
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = credentials[..<colon].isEmpty ? nil : String(credentials[..<colon])
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        if rest.hasSuffix("/") || rest.hasSuffix("/0") { rest = rest[..<(rest.lastIndex(of: "/") ?? rest.endIndex)] }
        guard !rest.contains("/") else {
            throw RedisError(.invalidURL, "a Redis Cluster has only database 0; drop the /database")
        }
        var seeds: [ClusterEndpoint] = []
        for part in rest.split(separator: ",", omittingEmptySubsequences: false) {
            let item = part.trimmingCharacters(in: " ")
            guard !item.isEmpty else { throw RedisError(.invalidURL, "empty node in the cluster URL (two commas?)") }
            let withPort = item.contains(":") ? item : item + ":6379"
            guard let endpoint = ClusterEndpoint(withPort), !endpoint.host.isEmpty, !endpoint.host.contains(" ") else {
                throw RedisError(.invalidURL, "'\(item)' is not host:port (port 1-65535)")
            }
            seeds.append(endpoint)
        }
        self.seeds = seeds
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        let credentials = password == nil ? "" : "\(user ?? ""):***@"
        return "redis-cluster://\(credentials)" + seeds.map(\.description).joined(separator: ",")
    }

    /// The plain URL of one node, with this URL's credentials.
    public func url(of node: ClusterEndpoint) -> RedisURL {
        RedisURL(host: node.host, port: node.port, user: user, password: password)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop { $0 == set }.reversed().drop { $0 == set }.reversed())
    }
}
