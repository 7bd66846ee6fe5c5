import Foundation

/// A process's resident memory (VmRSS) in KiB; 0 when unreadable.
public func residentKiB(_ pid: Int32) -> Int { statusField(pid, "VmRSS:") }

/// A process's peak resident memory (VmHWM) in KiB; 0 when unreadable.
public func peakKiB(_ pid: Int32) -> Int { statusField(pid, "VmHWM:") }

private func statusField(_ pid: Int32, _ field: String) -> Int {
    guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/status") else { return 0 }
    defer { try? file.close() }
    let text = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix(field) {
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }
    return 0
}
