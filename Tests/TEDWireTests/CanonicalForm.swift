/// The canonical form of a datagram the decoder accepted: what ted's encoder must write
/// for the decoded message, derived from the datagram's own bytes (docs/TESTING.md).
///
/// Only the liberties the spec gives a receiver are undone: unknown payloads and foreign
/// Vendor IDs dropped (section 3), payloads put in send order (section 4), every payload
/// header's reserved byte and the ignored fields zeroed (the identity's protocol ID, sent
/// as 17; the proxy address's port; ports whose summary flag is clear; the response's and
/// each entry's reserved bytes), and addresses masked (section 4.4). Everything else is
/// copied as it came, trailing bytes and oversized bodies included, so a decoder that
/// accepts too much yields a canonical form that the encoder does not reproduce.
/// Shared by TEDWireTests and the fuzz target (fuzz/Sources/DecodeFuzzer links this file).
func canonicalForm(_ datagram: [UInt8]) -> [UInt8]? {
    let tedHash: [UInt8] = [0x83, 0x20, 0x35, 0x5d, 0x3c, 0x37, 0xc2, 0xd9,
                            0x5b, 0xad, 0xba, 0x15, 0xe7, 0x3c, 0x79, 0xf5]
    guard datagram.count >= 28 else { return nil }
    var payloads: [(type: UInt8, body: [UInt8])] = []
    var next = datagram[16], offset = 28
    while next != 0 {
        guard offset + 4 <= datagram.count else { return nil }
        let length = Int(datagram[offset + 2]) << 8 | Int(datagram[offset + 3])
        guard length >= 4, offset + length <= datagram.count else { return nil }
        payloads.append((next, Array(datagram[(offset + 4)..<(offset + length)])))
        next = datagram[offset]
        offset += length
    }
    let trailing = Array(datagram[offset...])

    var vendorIDs: [[UInt8]] = [], ids: [[UInt8]] = [], summaries: [[UInt8]] = [], responses: [[UInt8]] = []
    var paddings: [[UInt8]] = [], cookies: [[UInt8]] = []
    for (type, body) in payloads {
        switch type {
        case 13 where body.starts(with: tedHash): vendorIDs.append(body)
        case 5: ids.append(body)
        case 240: summaries.append(body)
        case 241: responses.append(body)
        case 243: cookies.append(body)
        case 242: paddings.append(Array(repeating: 0, count: body.count))  // sent as zeros, ignored on receipt
        default: break
        }
    }
    /// Masks `count` address bytes at `at` with the `count` mask bytes after them.
    func mask(_ body: inout [UInt8], at: Int, count: Int) {
        for index in 0..<count where at + count + index < body.count { body[at + index] &= body[at + count + index] }
    }
    for index in ids.indices where ids[index].count >= 4 {
        if index == 0 {
            ids[index][1] = 17
        } else {
            let width = ids[index][0] == 6 ? 16 : 4
            ids[index][2] = 0
            ids[index][3] = 0
            mask(&ids[index], at: 4, count: width)
        }
    }
    for index in summaries.indices where summaries[index].count >= 24 {
        let flags = summaries[index][19]
        if flags & 1 == 0 { summaries[index][20] = 0; summaries[index][21] = 0 }
        if flags & 2 == 0 { summaries[index][22] = 0; summaries[index][23] = 0 }
    }
    for index in responses.indices where responses[index].count >= 4 {
        responses[index][3] = 0
        let width = responses[index][1] == 6 ? 16 : 4, entrySize = 12 + 4 * width
        for entry in 0..<Int(responses[index][2]) {
            let base = 4 + entry * entrySize
            guard base + entrySize <= responses[index].count else { break }
            responses[index][(base + 1)...(base + 3)] = [0, 0, 0]
            mask(&responses[index], at: base + 12, count: width)
            mask(&responses[index], at: base + 12 + 2 * width, count: width)
        }
    }

    var ordered: [(UInt8, [UInt8])] = vendorIDs.map { (13, $0) }
    ordered += ids.map { (5, $0) }
    ordered += summaries.map { (240, $0) }
    ordered += responses.map { (241, $0) }
    ordered += cookies.map { (243, $0) }
    ordered += paddings.map { (242, $0) }
    var chain: [UInt8] = []
    for (index, (_, body)) in ordered.enumerated() {
        let following = index + 1 < ordered.count ? ordered[index + 1].0 : 0
        let length = body.count + 4
        guard length <= 0xffff else { return nil }
        chain += [following, 0, UInt8(length >> 8), UInt8(length & 0xff)] + body
    }
    chain += trailing
    let total = 28 + chain.count
    return Array(datagram[0..<16]) + [ordered.first?.0 ?? 0] + Array(datagram[17..<24])
        + [UInt8(total >> 24 & 0xff), UInt8(total >> 16 & 0xff), UInt8(total >> 8 & 0xff), UInt8(total & 0xff)] + chain
}
