import TEDEngine
import TEDModel
import TEDWire
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Loads a configuration file, all or nothing: any error aborts with its position.
public enum ConfigurationLoader {
    static let topKeys = ["identity", "listen", "advertise-port", "probe-port", "policy", "peers", "discovery",
                          "responder", "dataplane", "hold", "ike", "control-socket", "control-group", "metrics", "capture", "capture-max-bytes",
                          "log-level"]

    /// Reads and parses the file at `path`.
    public static func load(path: String) throws(ConfigError) -> Configuration {
        guard let text = readTextFile(path) else {
            throw ConfigError(path: path, line: 1, column: 1, message: "cannot read the file")
        }
        return try parse(text, path: path, fileMode: KeySources.mode(of: path))
    }

    /// Parses configuration text; `path` is used in error messages, whose positions
    /// always name a character of `text`, and to find a relative `psk-file`.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> Configuration {
        try parse(text, path: path, fileMode: nil)
    }

    /// `fileMode`: the configuration file's mode, to warn when others can read a key in it.
    private static func parse(_ text: String, path: String, fileMode: mode_t?) throws(ConfigError) -> Configuration {
        let source = SourceText(text)
        do {
            return try parse(text, source: source, keys: KeySources(configPath: path, configMode: fileMode), path: path)
        } catch {
            throw source.clamped(error)
        }
    }

    private static func parse(_ text: String, source: SourceText, keys: KeySources, path: String) throws(ConfigError) -> Configuration {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ConfigError(path: path, line: 1, column: 1, message: "the file is empty")
            }
            root = node
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw yamlError(error, path: path)
        } catch {
            throw ConfigError(path: path, line: 1, column: 1, message: "\(error)")
        }
        return try parse(root: root, source: source, keys: keys, path: path)
    }

    private static func yamlError(_ error: YamlError, path: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
             .composer(_, let problem, let mark, _):
            return ConfigError(path: path, line: mark.line, column: mark.column, message: "YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigError(path: path, line: context.mark.line, column: context.mark.column,
                               message: "duplicate keys \(duplicates.joined(separator: ", "))")
        default:
            return ConfigError(path: path, line: 1, column: 1, message: "YAML: \(error)")
        }
    }

    private static func parse(root: Node, source: SourceText, keys: KeySources, path: String) throws(ConfigError) -> Configuration {
        var top = try MappingReader(path: path, node: root, what: "the configuration")
        let read = ScalarReader(path: path)

        guard let identityNode = top.value("identity") else {
            throw ConfigError.at(path, root, "missing 'identity' (this gateway's address)")
        }
        let identityText = try read.string(identityNode, "identity")
        guard let identity = IPAddress(identityText) else {
            throw ConfigError.at(path, identityNode, "'identity' must be an IPv4 or IPv6 address, not '\(identityText)'")
        }
        var listen = Endpoint(address: .zero(identity.family), port: ISAKMP.port)
        if let node = top.value("listen") {
            let text = try read.string(node, "listen")
            guard let endpoint = Endpoint(text, defaultPort: ISAKMP.port) else {
                throw ConfigError.at(path, node, "'listen' must be address:port (e.g. 0.0.0.0:500 or [::]:500), not '\(text)'")
            }
            listen = endpoint
        }
        guard let policyNode = top.value("policy") else {
            throw ConfigError.at(path, root, "missing 'policy' (a list of ACL lines)")
        }
        var config = Configuration(identity: identity, listen: listen, policy: try policy(policyNode, source: source, path: path))
        if let node = top.value("advertise-port") { config.advertisePort = try read.port(node, "advertise-port") }
        if let node = top.value("probe-port") { config.probePort = try read.port(node, "probe-port") }
        if let node = top.value("peers") {
            config.peers = []
            for item in try read.list(node, "peers") {
                let (authorization, key) = try peer(item, keys: keys, path: path)
                config.peers.append(authorization)
                if let key { config.peerKeys.append(key) }
            }
        }
        if let node = top.value("discovery") { config.discovery = try discovery(node, path: path) }
        if let node = top.value("responder") { config.responder = try responder(node, path: path) }
        if let node = top.value("dataplane") { config.dataplane = try dataplane(node, listenPort: listen.port, path: path) }
        if let node = top.value("hold") { config.hold = try hold(node, path: path) }
        if let node = top.value("ike") {
            config.ike = try ike(node, peerKeys: !config.peerKeys.isEmpty, hasPeers: !config.peers.isEmpty, keys: keys, path: path)
        }
        if let node = top.value("control-socket") {
            config.controlSocket = try read.string(node, "control-socket")
            guard !config.controlSocket.isEmpty, config.controlSocket.utf8.count < 108 else {
                throw ConfigError.at(path, node, "'control-socket' must be a path of 1 to 107 bytes")
            }
        }
        if let node = top.value("control-group") {
            let name = try read.string(node, "control-group")
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "_-.".contains($0) }) else {
                throw ConfigError.at(path, node, "'control-group' must be a group name, not '\(name)'")
            }
            config.controlGroup = name
        }
        if let node = top.value("metrics") {
            let text = try read.string(node, "metrics")
            guard let endpoint = Endpoint(text) else {
                throw ConfigError.at(path, node, "'metrics' must be address:port (e.g. 127.0.0.1:9500), not '\(text)'")
            }
            config.metrics = endpoint
        }
        if let node = top.value("capture") { config.capture = try read.string(node, "capture") }
        if let node = top.value("capture-max-bytes") {
            config.captureMaxBytes = try read.bytes(node, "capture-max-bytes", in: Configuration.validCaptureMaxBytes)
        }
        if let node = top.value("log-level") {
            let text = try read.string(node, "log-level")
            guard let level = LogLevel(rawValue: text) else {
                throw ConfigError.at(path, node, "'log-level' must be one of \(LogLevel.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
            }
            config.logLevel = level
        }
        try top.rejectUnknownKeys(allowed: topKeys)
        config.warnings = keys.warnings
        return config
    }

    private static func policy(_ node: Node, source: SourceText, path: String) throws(ConfigError) -> Policy {
        let read = ScalarReader(path: path)
        var rules: [PolicyRule] = []
        for item in try read.list(node, "policy") {
            guard case .scalar(let scalar) = item else {
                throw ConfigError.at(path, item, "each policy line must be a single ACL line")
            }
            do throws(SyntaxError) {
                if let entry = try ACLParser.parseLine(scalar.string) {
                    rules.append(PolicyRule(index: rules.count + 1, entry: entry, text: scalar.string,
                                            line: item.mark?.line))
                }
            } catch {
                let (line, column) = valuePosition(scalar, item, source: source, offset: error.column - 1)
                let start = item.mark?.line ?? line
                let joined = scalar.style == .plain && line > start
                    ? " (YAML joined lines \(start) to \(line) into one policy line: check the indentation of line \(line))" : ""
                throw ConfigError(path: path, line: line, column: column, message: error.message + joined)
            }
        }
        guard rules.contains(where: { $0.entry.action == .permit }) else {
            throw ConfigError.at(path, node, "the policy has no permit entry: nothing would be protected")
        }
        return Policy(rules: rules)
    }

    /// Where character `offset` of a scalar's value is in the file: a plain scalar may be
    /// folded from several lines, a quoted one starts after its quote, a block one on the next line.
    private static func valuePosition(_ scalar: Node.Scalar, _ node: Node, source: SourceText,
                                      offset: Int) -> (line: Int, column: Int) {
        let line = node.mark?.line ?? 1, column = node.mark?.column ?? 1
        switch scalar.style {
        case .singleQuoted, .doubleQuoted:
            return source.position(ofOffset: offset, inValue: scalar.string, line: line, column: column + 1)
        case .literal, .folded:
            let indentation = source.lines.indices.contains(line) ? source.lines[line].prefix { $0 == " " }.count : 0
            return source.position(ofOffset: offset, inValue: scalar.string, line: line + 1, column: indentation + 1)
        default:
            return source.position(ofOffset: offset, inValue: scalar.string, line: line, column: column)
        }
    }

    /// A peer: a bare prefix (may claim anything), or `{ identity: PREFIX, protects: [PREFIX...], psk: KEY }`
    /// (or `psk-file: PATH` instead of `psk`).
    private static func peer(_ item: Node, keys: KeySources, path: String) throws(ConfigError) -> (PeerAuthorization, PeerKey?) {
        let read = ScalarReader(path: path)
        func prefix(_ node: Node, _ what: String) throws(ConfigError) -> AddressPattern {
            let text = try read.string(node, what)
            guard let pattern = AddressPattern(text) else {
                throw ConfigError.at(path, node, "\(what) must be an address or prefix (e.g. 198.51.100.0/24), not '\(text)'")
            }
            return pattern
        }
        guard case .mapping = item else { return (PeerAuthorization(identity: try prefix(item, "a peer")), nil) }
        var section = try MappingReader(path: path, node: item, what: "a peer")
        guard let identityNode = section.value("identity") else {
            throw ConfigError.at(path, item, "a peer needs 'identity' (the prefix its identity lies in)")
        }
        let identity = try prefix(identityNode, "'identity'")
        var protects: [AddressPattern]?
        if let node = section.value("protects") {
            var prefixes: [AddressPattern] = []
            for entry in try read.list(node, "protects") { prefixes.append(try prefix(entry, "'protects'")) }
            protects = prefixes
        }
        var key: PeerKey?
        if let secret = try keys.secret(psk: section.value("psk"), file: section.value("psk-file"), path: path) {
            // charon names the key's owners as identities: a prefix, never a wildcard mask.
            guard identity.prefixLength != nil else {
                throw ConfigError.at(path, identityNode, "a peer with a 'psk' needs a prefix identity (A/len), not a wildcard mask")
            }
            key = PeerKey(identity: identity, secret: secret.text)
        }
        try section.rejectUnknownKeys(allowed: ["identity", "protects", "psk", "psk-file"])
        return (PeerAuthorization(identity: identity, protects: protects), key)
    }

    private static func discovery(_ node: Node, path: String) throws(ConfigError) -> DiscoveryOptions {
        var section = try MappingReader(path: path, node: node, what: "'discovery'")
        let read = ScalarReader(path: path)
        var options = DiscoveryOptions()
        if let n = section.value("retries") { options.retries = try read.int(n, "retries", in: DiscoverySettings.validRetries) }
        if let n = section.value("timeout") { options.timeout = try read.seconds(n, "timeout", in: DiscoverySettings.validWait) }
        // Each retry doubles the wait: the last one must still be one the engine keeps.
        let longest = DiscoverySettings.validWait.upperBound.seconds
        if options.timeout * Double(1 << options.retries) > longest {
            let node = section.value("timeout") ?? section.value("retries") ?? node
            throw ConfigError.at(path, node, "'timeout' doubled for each of the \(options.retries) retries must stay within \(Int(longest)) s (the longest wait)")
        }
        if let n = section.value("cache-ttl") { options.cacheTTL = try read.seconds(n, "cache-ttl", in: DiscoverySettings.validTTL) }
        if let n = section.value("negative-ttl") { options.negativeTTL = try read.seconds(n, "negative-ttl", in: DiscoverySettings.validTTL) }
        if let n = section.value("max-pending") { options.maxPending = try read.int(n, "max-pending", in: DiscoverySettings.validMaxPending) }
        if let n = section.value("max-cache") { options.maxCache = try read.int(n, "max-cache", in: DiscoverySettings.validMaxCache) }
        if let n = section.value("send-proxy-address") { options.sendProxyAddress = try read.bool(n, "send-proxy-address") }
        if let n = section.value("entries") { options.entries = try read.int(n, "entries", in: DiscoverySettings.validWantedEntries) }
        try section.rejectUnknownKeys(allowed: ["retries", "timeout", "cache-ttl", "negative-ttl", "max-pending",
                                                "max-cache", "send-proxy-address", "entries"])
        return options
    }

    private static func responder(_ node: Node, path: String) throws(ConfigError) -> ResponderOptions {
        var section = try MappingReader(path: path, node: node, what: "'responder'")
        let read = ScalarReader(path: path)
        var options = ResponderOptions()
        // The engine's rates, but at least one probe a second: 0 would refuse all but the burst.
        let rates = max(RateLimit.validPerSecond.lowerBound, 1)...RateLimit.validPerSecond.upperBound
        if let n = section.value("enabled") { options.enabled = try read.bool(n, "enabled") }
        if let n = section.value("rate") { options.rate = try read.int(n, "rate", in: rates) }
        if let n = section.value("burst") { options.burst = try read.int(n, "burst", in: RateLimit.validBurst) }
        if let n = section.value("target-rate") { options.targetRate = try read.int(n, "target-rate", in: rates) }
        if let n = section.value("target-burst") { options.targetBurst = try read.int(n, "target-burst", in: RateLimit.validBurst) }
        if let n = section.value("global-rate") { options.globalRate = try read.int(n, "global-rate", in: rates) }
        if let n = section.value("global-burst") { options.globalBurst = try read.int(n, "global-burst", in: RateLimit.validBurst) }
        if let n = section.value("max-sources") { options.maxSources = try read.int(n, "max-sources", in: ResponderSettings.validMaxTrackedSources) }
        if let n = section.value("offer-all") { options.offerAll = try read.bool(n, "offer-all") }
        if let n = section.value("pass-through") { options.passThrough = try read.bool(n, "pass-through") }
        try section.rejectUnknownKeys(allowed: ["enabled", "rate", "burst", "target-rate", "target-burst", "global-rate", "global-burst",
                                                "max-sources", "offer-all", "pass-through"])
        return options
    }

    private static func dataplane(_ node: Node, listenPort: UInt16, path: String) throws(ConfigError) -> DataplaneOptions {
        var section = try MappingReader(path: path, node: node, what: "'dataplane'")
        let read = ScalarReader(path: path)
        var options = DataplaneOptions()
        if let n = section.value("traps") { options.traps = try read.bool(n, "traps") }
        if let n = section.value("intercept") { options.intercept = try read.bool(n, "intercept") }
        let interceptPortNode = section.value("intercept-port")
        if let n = interceptPortNode { options.interceptPort = try read.port(n, "intercept-port") }
        // The intercepting socket and the TED socket would both bind the port: one of them fails at start.
        if options.interceptPort == listenPort, options.intercept || interceptPortNode != nil {
            let at = interceptPortNode ?? section.value("intercept") ?? node
            throw ConfigError.at(path, at, "'intercept-port' \(options.interceptPort)\(interceptPortNode == nil ? " (the default)" : "") "
                + "is the listen port: intercepted probes need a port of their own (e.g. intercept-port: \(listenPort == 65_535 ? listenPort - 1 : listenPort + 1))")
        }
        if let n = section.value("acquire-expires") { options.acquireExpires = try read.int(n, "acquire-expires", in: DataplaneOptions.validAcquireExpires) }
        if let n = section.value("max-selectors-per-entry") {
            options.maxSelectorsPerEntry = try read.int(n, "max-selectors-per-entry", in: DataplaneOptions.validMaxSelectorsPerEntry)
        }
        if let n = section.value("trap-interface") {
            let name = try read.string(n, "trap-interface")
            guard (1...15).contains(name.utf8.count), !name.contains("/"), !name.contains(" ") else {
                throw ConfigError.at(path, n, "'trap-interface' must be an interface name of 1 to 15 characters")
            }
            options.trapInterface = name
        }
        try section.rejectUnknownKeys(allowed: ["traps", "intercept", "intercept-port", "acquire-expires",
                                                "max-selectors-per-entry", "trap-interface"])
        return options
    }

    /// `hold: off`, or a section of bounds.
    private static func hold(_ node: Node, path: String) throws(ConfigError) -> HoldOptions {
        let read = ScalarReader(path: path)
        var options = HoldOptions()
        if case .scalar = node {
            options.enabled = try read.bool(node, "hold")
            return options
        }
        var section = try MappingReader(path: path, node: node, what: "'hold'")
        if let n = section.value("enabled") { options.enabled = try read.bool(n, "enabled") }
        if let n = section.value("per-flow") { options.perFlow = try read.int(n, "per-flow", in: HeldPackets.Limits.validPerFlow) }
        if let n = section.value("per-source") { options.perSource = try read.int(n, "per-source", in: HeldPackets.Limits.validPerSource) }
        if let n = section.value("packets") { options.packets = try read.int(n, "packets", in: HeldPackets.Limits.validPackets) }
        if let n = section.value("bytes") { options.bytes = try read.bytes(n, "bytes", in: HeldPackets.Limits.validBytes) }
        if let n = section.value("time") { options.time = try read.seconds(n, "time", in: HeldPackets.Limits.validTime) }
        if let n = section.value("queue") { options.queue = UInt16(try read.int(n, "queue", in: 0...65_535)) }
        try section.rejectUnknownKeys(allowed: ["enabled", "per-flow", "per-source", "packets", "bytes", "time", "queue"])
        return options
    }

    private static func ike(_ node: Node, peerKeys: Bool, hasPeers: Bool, keys: KeySources, path: String) throws(ConfigError) -> IKEOptions {
        var section = try MappingReader(path: path, node: node, what: "'ike'")
        let read = ScalarReader(path: path)
        var options = IKEOptions()
        if let n = section.value("vici") { options.vici = try read.string(n, "vici") }
        if let n = section.value("proposals") { options.proposals = try read.strings(n, "proposals") }
        if let n = section.value("esp-proposals") { options.espProposals = try read.strings(n, "esp-proposals") }
        if let n = section.value("respond") { options.respond = try read.bool(n, "respond") }
        if let n = section.value("max-connections") { options.maxConnections = try read.int(n, "max-connections", in: IKEOptions.validMaxConnections) }
        if let n = section.value("max-connections-per-peer") {
            options.maxConnectionsPerPeer = try read.int(n, "max-connections-per-peer", in: IKEOptions.validMaxConnectionsPerPeer)
        }
        if let n = section.value("initiate-timeout") {
            options.initiateTimeout = try read.seconds(n, "initiate-timeout", in: IKEOptions.validInitiateTimeout)
        }
        let psk = try keys.secret(psk: section.value("psk"), file: section.value("psk-file"), path: path)
        let cert = section.value("certificate"), key = section.value("private-key"), ca = section.value("ca-certificate")
        switch (psk, cert, key, ca) {
        case (let psk?, nil, nil, nil):
            // A key nobody owns is a key for any identity: every holder could become a
            // peer for anything it answers.
            guard hasPeers else {
                throw ConfigError.at(path, psk.node, "'psk' needs 'peers': a group key is owned by the listed peers' identity prefixes "
                    + "(e.g. peers: [198.51.100.0/24]), never by any identity; or give each peer its own 'psk', or use certificates")
            }
            options.authentication = .psk(psk.text)
        case (nil, let cert?, let key?, let ca?):
            guard !peerKeys else {
                throw ConfigError.at(path, node, "'ike' authenticates with certificates: remove the peers' 'psk' keys")
            }
            let privateKey = try read.string(key, "private-key")
            keys.warnIfOthersCanRead(privateKey, key: "private-key", at: key, path: path)
            options.authentication = .pubkey(certificate: try read.string(cert, "certificate"),
                                             privateKey: privateKey,
                                             caCertificate: try read.string(ca, "ca-certificate"))
        case (nil, nil, nil, nil) where peerKeys:
            options.authentication = .peerKeys
        default:
            throw ConfigError.at(path, node, "'ike' needs 'psk' or 'psk-file' (or peers with their own) or all of 'certificate', 'private-key' and 'ca-certificate'")
        }
        try section.rejectUnknownKeys(allowed: ["vici", "proposals", "esp-proposals", "respond", "initiate-timeout", "max-connections",
                                                "max-connections-per-peer", "psk", "psk-file", "certificate", "private-key", "ca-certificate"])
        return options
    }
}

/// Reads a whole file (at most `maxBytes`), or nil when it cannot be read or is larger.
public func readFileBytes(_ path: String, maxBytes: Int = 64 << 20) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = fread(&chunk, 1, chunk.count, file)
        if count > 0 { bytes.append(contentsOf: chunk[0..<count]) }
        if bytes.count > maxBytes { return nil }
        if count < chunk.count { return bytes }
    }
}

/// Reads a whole text file (at most `maxBytes`), or nil when it cannot be read.
public func readTextFile(_ path: String, maxBytes: Int = 64 << 20) -> String? {
    readFileBytes(path, maxBytes: maxBytes).map { String(decoding: $0, as: UTF8.self) }
}
