import Testing
@testable import TEDEngine

@Suite struct SipHashTests {
    /// Key 00..0f as the reference implementation reads it (little-endian words).
    private func referenceHash(length: Int) -> UInt64 {
        var hash = SipHash24(k0: 0x0706_0504_0302_0100, k1: 0x0f0e_0d0c_0b0a_0908)
        hash.append(contentsOf: (0..<length).map { UInt8($0) })
        return hash.finalize()
    }

    @Test func paperVectorFifteenBytes() {
        // Appendix A of the SipHash paper: message 00..0e.
        #expect(referenceHash(length: 15) == 0xa129_ca61_49be_45e5)
    }

    @Test(arguments: [
        (0, UInt64(0x726f_db47_dd0e_0e31)),
        (1, UInt64(0x74f8_39c5_93dc_67fd)),
        (7, UInt64(0xab02_00f5_8b01_d137)),
        (8, UInt64(0x93f5_f579_9a93_2462)),
        (63, UInt64(0x958a_324c_eb06_4572)),
    ])
    func referenceVectors(length: Int, expected: UInt64) {
        #expect(referenceHash(length: length) == expected)
    }

    @Test func bigEndianIntegersAreTheirBytes() {
        var a = SipHash24(k0: 1, k1: 2)
        a.append(bigEndian: UInt32(0x0102_0304))
        var b = SipHash24(k0: 1, k1: 2)
        b.append(contentsOf: [1, 2, 3, 4])
        #expect(a.finalize() == b.finalize())
    }

    @Test func keyChangesTheHash() {
        var a = SipHash24(k0: 1, k1: 2)
        var b = SipHash24(k0: 1, k1: 3)
        a.append(7)
        b.append(7)
        #expect(a.finalize() != b.finalize())
    }
}
