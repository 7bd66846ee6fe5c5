/// The nftables tables that exist now, as `family name` ("inet ted-guard"): how ted notices
/// that another program (`nft flush ruleset`, `systemctl restart nftables`) removed one.
public enum NFTTables {
    /// Every table, or nil when nft cannot be asked.
    public static func present() -> Set<String>? {
        let result = runCommand(["nft", "list", "tables"])
        guard result.status == 0 else { return nil }
        return Set(result.output.split(separator: "\n").compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 3 && words[0] == "table" ? "\(words[1]) \(words[2])" : nil
        })
    }
}

extension NFTTables {
    /// Installs several tables' rulesets in one `nft -f` (one transaction, one process).
    public static func install(_ rulesets: [String]) throws(CommandError) {
        let result = runCommand(["nft", "-f", "-"], input: rulesets.joined())
        guard result.status == 0 else { throw CommandError(command: "nft -f (ted's tables)", output: result.output) }
    }
}

