import NIOCore
import Testing
@testable import TEDVici

@Suite struct ViciMessageTests {
    /// A message whose bytes were worked out by hand from the vici README's element layout.
    @Test func encodesByteExactly() throws {
        var message = ViciMessage()
        message.add("a", "b")
        message.add("l", list: ["x"])
        var inner = ViciMessage()
        inner.add("k", "v")
        message.add("s", section: inner)
        var buffer = ByteBuffer()
        try message.encode(into: &buffer)
        #expect(Array(buffer.readableBytesView) == [
            3, 1, 0x61, 0, 1, 0x62,          // KEY_VALUE "a" = "b"
            4, 1, 0x6c, 5, 0, 1, 0x78, 6,    // LIST_START "l", LIST_ITEM "x", LIST_END
            1, 1, 0x73, 3, 1, 0x6b, 0, 1, 0x76, 2,  // SECTION_START "s" { k = v } SECTION_END
        ])
    }

    @Test func roundTripsNestedMessages() throws {
        var child = ViciMessage()
        child.add("local_ts", list: ["198.18.1.0/24[tcp]"])
        child.add("remote_ts", list: ["198.18.2.0/24[tcp/443]"])
        var children = ViciMessage()
        children.add("ted-1", section: child)
        var connection = ViciMessage()
        connection.add("version", "2")
        connection.add("remote_addrs", list: ["198.51.100.2", "198.51.100.3"])
        connection.add("children", section: children)
        var message = ViciMessage()
        message.add("ted-1", section: connection)
        var buffer = ByteBuffer()
        try message.encode(into: &buffer)
        let decoded = try ViciMessage.decode(&buffer)
        #expect(decoded == message)
        #expect(decoded.section("ted-1")?.section("children")?.section("ted-1")?.list("remote_ts") == ["198.18.2.0/24[tcp/443]"])
        #expect(decoded.section("ted-1")?["version"] == "2")
    }

    @Test(arguments: [
        ([3, 1, 0x61, 0, 5, 0x62] as [UInt8], ViciDecodeError.Reason.truncated),
        ([9], .badElementType),
        ([2], .unbalancedSection),
        ([1, 1, 0x73, 3, 1, 0x6b, 0, 0], .unbalancedSection),
        ([4, 1, 0x6c, 3], .unbalancedList),
        ([5, 0, 0], .unbalancedList),
        (Array(repeating: [1, 0] as [UInt8], count: 40).flatMap { $0 }, .tooDeep),
    ])
    func rejects(bytes: [UInt8], reason: ViciDecodeError.Reason) {
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: ViciDecodeError(reason: reason)) { try ViciMessage.decode(&buffer) }
    }

    @Test func randomBytesNeverTrap() {
        var state: UInt64 = 0x7ed
        for _ in 0..<5000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let count = Int(state >> 58)
            var bytes: [UInt8] = []
            for index in 0..<count { bytes.append(UInt8(truncatingIfNeeded: state >> (index % 8 * 8)) % 8) }
            var buffer = ByteBuffer(bytes: bytes)
            _ = try? ViciMessage.decode(&buffer)
        }
    }
}

/// VICI lengths are 16 bits for values and 8 for names: larger ones are refused, at the byte.
@Suite struct ViciEncodeLimitTests {
    /// An accepted message round-trips; a refused one throws and writes nothing usable.
    func expect(_ message: ViciMessage, accepted: Bool) throws {
        var buffer = ByteBuffer()
        if accepted {
            try message.encode(into: &buffer)
            #expect(try ViciMessage.decode(&buffer) == message)
        } else {
            #expect(throws: ViciEncodeError.self) { try message.encode(into: &buffer) }
        }
    }

    @Test(arguments: [(65_535, true), (65_536, false), (70_000, false)])
    func valueLengthBoundary(size: Int, accepted: Bool) throws {
        try expect(ViciMessage([.value("k", Array(repeating: 1, count: size)), .value("after", [2])]), accepted: accepted)
        try expect(ViciMessage([.list("k", [Array(repeating: 1, count: size)]), .value("after", [2])]), accepted: accepted)
    }

    @Test(arguments: [(255, true), (256, false)])
    func nameLengthBoundary(size: Int, accepted: Bool) throws {
        try expect(ViciMessage([.value(String(repeating: "n", count: size), [1])]), accepted: accepted)
    }
}
