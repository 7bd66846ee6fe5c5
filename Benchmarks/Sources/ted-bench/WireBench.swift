import ArgumentParser
import NIOCore
import TEDBenchSupport
import TEDWire

/// `ted-bench wire`: codec speed on one core, beside a byte-copy baseline in the same run.
struct WireBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Encode and decode messages per second on one core (the spec's vectors), beside a baseline.",
        discussion: "--only-decode N runs N decodes and nothing else, for counting allocations under valgrind (scripts/bench-wire-allocations.sh).")

    @Option(help: "Seconds per measurement.")
    var seconds = 2.0

    @Option(help: "Decode the probe vector and the response vector this many times each; print nothing.")
    var onlyDecode: Int?

    static let probe = try? ByteBuffer(plainHexEncodedBytes: "010203040506070800000000000000000d10f0000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f000000c011101f4c6336401000000248320355d3c37c2d95badba15e73c79f5030406039c4001bbc612010ac6120214")
    static let response = try? ByteBuffer(plainHexEncodedBytes: "010203040506070811121314151617180d10f1000000000000000064050000188320355d3c37c2d95badba15e73c79f500000003f100000c011101f4c633640200000024030401000600000001bb01bb0000ffffc6120200ffffff00c6120000ffff0000")

    func run() throws {
        guard let probe = Self.probe, let response = Self.response else { throw ExitCode(1) }
        if let count = onlyDecode {
            var decoded = 0
            for _ in 0..<count {
                if (try? TEDCodec.decode(probe)) != nil { decoded += 1 }
                if (try? TEDCodec.decode(response)) != nil { decoded += 1 }
            }
            if decoded != 2 * count { throw ExitCode(1) }
            return
        }
        guard let probeMessage = try? TEDCodec.decode(probe), let responseMessage = try? TEDCodec.decode(response) else {
            throw ExitCode(1)
        }
        var sink = 0
        func measure(_ body: () -> Int) -> Double {
            var count = 0
            let start = monotonicNanos(), end = start + UInt64(seconds * 1e9)
            while monotonicNanos() < end {
                for _ in 0..<1000 { sink &+= body() }
                count += 1000
            }
            return Double(count) / (Double(monotonicNanos() - start) / 1e9)
        }
        var scratch = ByteBufferAllocator().buffer(capacity: 512)
        let rows: [(String, Double)] = [
            ("baseline: copy the probe's bytes into a reused buffer", measure {
                scratch.clear()
                var copy = probe
                return scratch.writeBuffer(&copy)
            }),
            ("decode probe (vector 1)", measure { (try? TEDCodec.decode(probe)) == nil ? 0 : 1 }),
            ("decode response (vector 2)", measure { (try? TEDCodec.decode(response)) == nil ? 0 : 1 }),
            ("encode probe into a reused buffer", measure {
                scratch.clear()
                TEDCodec.encode(probeMessage, into: &scratch)
                return scratch.readableBytes
            }),
            ("encode response into a reused buffer", measure {
                scratch.clear()
                TEDCodec.encode(responseMessage, into: &scratch)
                return scratch.readableBytes
            }),
        ]
        print("| operation | messages/s (one core) |")
        print("|---|---:|")
        for (name, rate) in rows { print("| \(name) | \(Int(rate)) |") }
        if sink == 42 { print("") }
    }
}
