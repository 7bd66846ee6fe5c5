import NIOCore

/// A VICI message: an ordered list of elements (strongSwan's vici README, "Message format").
///
/// Values are bytes; most are text, so text helpers are provided.
public struct ViciMessage: Hashable, Sendable {
    public indirect enum Element: Hashable, Sendable {
        case value(String, [UInt8])
        case list(String, [[UInt8]])
        case section(String, ViciMessage)
    }

    public var elements: [Element]

    public init(_ elements: [Element] = []) { self.elements = elements }

    /// A key's text value at this level.
    public subscript(key: String) -> String? {
        for case .value(let name, let bytes) in elements where name == key { return String(decoding: bytes, as: UTF8.self) }
        return nil
    }

    /// A sub-section at this level.
    public func section(_ key: String) -> ViciMessage? {
        for case .section(let name, let message) in elements where name == key { return message }
        return nil
    }

    /// A list's text items at this level.
    public func list(_ key: String) -> [String]? {
        for case .list(let name, let items) in elements where name == key {
            return items.map { String(decoding: $0, as: UTF8.self) }
        }
        return nil
    }

    /// Every sub-section, in order.
    public var sections: [(String, ViciMessage)] {
        elements.compactMap { if case .section(let name, let message) = $0 { (name, message) } else { nil } }
    }
}

/// Builds messages: `ViciMessage { "version" <- "2" }` style is avoided; plain appends.
extension ViciMessage {
    public mutating func add(_ key: String, _ value: String) { elements.append(.value(key, Array(value.utf8))) }
    public mutating func add(_ key: String, bytes: [UInt8]) { elements.append(.value(key, bytes)) }
    public mutating func add(_ key: String, list: [String]) { elements.append(.list(key, list.map { Array($0.utf8) })) }
    /// A list of binary items (certificates, as charon's `certs` and `cacerts` take them).
    public mutating func add(_ key: String, byteList: [[UInt8]]) { elements.append(.list(key, byteList)) }
    public mutating func add(_ key: String, section: ViciMessage) { elements.append(.section(key, section)) }
}

/// Why bytes are not a VICI packet or message.
public struct ViciDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Hashable, Sendable {
        case truncated, badElementType, unbalancedSection, unbalancedList, tooDeep, tooLarge, badPacketType
    }
    public let reason: Reason
    public var description: String { "VICI: \(reason.rawValue)" }
}

/// A message that VICI's length fields cannot hold.
public struct ViciEncodeError: Error, Hashable, Sendable, CustomStringConvertible {
    public let key: String
    public let size: Int
    public var description: String { "VICI: '\(key.prefix(40))' is \(size) bytes, more than its length field holds" }
}

/// Element and packet type codes (vici README, "Packet layer" and "Message format").
enum ViciElement: UInt8 {
    case sectionStart = 1, sectionEnd = 2, keyValue = 3, listStart = 4, listItem = 5, listEnd = 6
}

public enum ViciPacketType: UInt8, Sendable {
    case cmdRequest = 0, cmdResponse = 1, cmdUnknown = 2, eventRegister = 3, eventUnregister = 4
    case eventConfirm = 5, eventUnknown = 6, event = 7
}

extension ViciMessage {
    /// The encoded elements (without packet framing). A value of 64 KiB or more, or a
    /// name of 256 bytes or more, cannot be expressed (16- and 8-bit lengths): refused,
    /// never truncated into a message that would corrupt everything after it.
    public func encode(into buffer: inout ByteBuffer) throws(ViciEncodeError) {
        for element in elements {
            switch element {
            case .value(let key, let value):
                guard value.count <= Int(UInt16.max) else { throw ViciEncodeError(key: key, size: value.count) }
                buffer.writeInteger(ViciElement.keyValue.rawValue)
                try buffer.writeViciName(key)
                buffer.writeInteger(UInt16(value.count))
                buffer.writeBytes(value)
            case .list(let key, let items):
                buffer.writeInteger(ViciElement.listStart.rawValue)
                try buffer.writeViciName(key)
                for item in items {
                    guard item.count <= Int(UInt16.max) else { throw ViciEncodeError(key: key, size: item.count) }
                    buffer.writeInteger(ViciElement.listItem.rawValue)
                    buffer.writeInteger(UInt16(item.count))
                    buffer.writeBytes(item)
                }
                buffer.writeInteger(ViciElement.listEnd.rawValue)
            case .section(let key, let message):
                buffer.writeInteger(ViciElement.sectionStart.rawValue)
                try buffer.writeViciName(key)
                try message.encode(into: &buffer)
                buffer.writeInteger(ViciElement.sectionEnd.rawValue)
            }
        }
    }

    /// Decodes a whole message body; nesting is bounded.
    public static func decode(_ buffer: inout ByteBuffer) throws(ViciDecodeError) -> ViciMessage {
        let message = try decodeLevel(&buffer, depth: 0)
        guard buffer.readableBytes == 0 else { throw ViciDecodeError(reason: .unbalancedSection) }
        return message
    }

    private static func decodeLevel(_ buffer: inout ByteBuffer, depth: Int) throws(ViciDecodeError) -> ViciMessage {
        guard depth < 32 else { throw ViciDecodeError(reason: .tooDeep) }
        var message = ViciMessage()
        while let code = buffer.readInteger(as: UInt8.self) {
            guard let type = ViciElement(rawValue: code) else { throw ViciDecodeError(reason: .badElementType) }
            switch type {
            case .sectionEnd:
                guard depth > 0 else { throw ViciDecodeError(reason: .unbalancedSection) }
                return message
            case .keyValue:
                let key = try buffer.readViciName()
                guard let length = buffer.readInteger(as: UInt16.self), let value = buffer.readBytes(length: Int(length)) else {
                    throw ViciDecodeError(reason: .truncated)
                }
                message.elements.append(.value(key, value))
            case .listStart:
                let key = try buffer.readViciName()
                var items: [[UInt8]] = []
                while true {
                    guard let itemCode = buffer.readInteger(as: UInt8.self) else { throw ViciDecodeError(reason: .truncated) }
                    if itemCode == ViciElement.listEnd.rawValue { break }
                    guard itemCode == ViciElement.listItem.rawValue else { throw ViciDecodeError(reason: .unbalancedList) }
                    guard let length = buffer.readInteger(as: UInt16.self), let item = buffer.readBytes(length: Int(length)) else {
                        throw ViciDecodeError(reason: .truncated)
                    }
                    items.append(item)
                }
                message.elements.append(.list(key, items))
            case .sectionStart:
                let key = try buffer.readViciName()
                let inner = try decodeLevel(&buffer, depth: depth + 1)
                message.elements.append(.section(key, inner))
            case .listItem, .listEnd:
                throw ViciDecodeError(reason: .unbalancedList)
            }
        }
        guard depth == 0 else { throw ViciDecodeError(reason: .unbalancedSection) }
        return message
    }
}

extension ByteBuffer {
    mutating func writeViciName(_ name: String) throws(ViciEncodeError) {
        let bytes = Array(name.utf8)
        guard bytes.count <= Int(UInt8.max) else { throw ViciEncodeError(key: name, size: bytes.count) }
        writeInteger(UInt8(bytes.count))
        writeBytes(bytes)
    }

    mutating func readViciName() throws(ViciDecodeError) -> String {
        guard let length = readInteger(as: UInt8.self), let bytes = readBytes(length: Int(length)) else {
            throw ViciDecodeError(reason: .truncated)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
