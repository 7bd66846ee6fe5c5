/// Why a datagram is not a valid TED message (spec sections 3 and 4): one named reason per rule.
public struct DecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Hashable, Sendable, CaseIterable {
        // Section 3: the datagram and the ISAKMP header.
        case tooShort
        case tooLong
        case lengthMismatch
        case badVersion
        case badExchangeType
        case nonZeroFlags
        case nonZeroMessageID
        case zeroInitiatorCookie
        case nonZeroResponderCookie
        case zeroResponderCookie
        // Section 3: the payload chain.
        case payloadTooShort
        case truncatedPayload
        case tooManyPayloads
        case trailingBytes
        // Sections 3 and 4: which payloads, how often, how large.
        case missingVendorID
        case missingIdentity
        case missingSummary
        case missingResponse
        case missingCookie
        case duplicateVendorID
        case duplicateSummary
        case duplicateResponse
        case duplicatePadding
        case duplicateCookie
        case tooManyIDs
        case unexpectedPayload
        case badPayloadSize
        // Section 4: payload contents.
        case badIDType
        case badHash
        case badTEDVersion
        case badIPVersion
        case badSummaryFlags
        case badEntryCount
        case tooManyEntries
        case portRangeInverted
        case portsWithAnyProtocol
    }

    public let reason: Reason
    /// A short detail for logs (which payload, which value); never needed to act on the error.
    public let detail: String?

    public init(_ reason: Reason, _ detail: String? = nil) {
        self.reason = reason
        self.detail = detail
    }

    public var description: String { detail.map { "\(reason.rawValue) (\($0))" } ?? reason.rawValue }
}
