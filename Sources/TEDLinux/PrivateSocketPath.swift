#if canImport(Glibc)
import Glibc
#endif

/// Where to bind a UNIX socket so that no other user can reach it before it has its owner
/// and mode: a new directory beside the final path that only this user may enter (mode
/// 0700, made by mkdtemp whatever the umask). `publish` sets the socket's group and mode
/// there, then renames it onto the final path, which it replaces at once. No umask
/// change: that is process-wide, and would race every file another thread creates.
public struct PrivateSocketPath: Sendable {
    /// The path the socket is bound to, inside the private directory.
    public let bindPath: String
    /// Where `publish` puts it.
    public let finalPath: String
    private let directory: String

    public init(for finalPath: String) throws(LinuxError) {
        let slash = finalPath.lastIndex(of: "/")
        let parent = slash.map { String(finalPath[..<$0]) } ?? "."
        let name = slash.map { String(finalPath[finalPath.index(after: $0)...]) } ?? finalPath
        var template = Array("\(parent.isEmpty ? "" : parent)/.\(name).XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw LinuxError("create a private directory beside \(finalPath)", code: errno)
        }
        directory = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        bindPath = directory + "/s"
        self.finalPath = finalPath
    }

    /// Gives the bound socket `mode` (and `groupID`, when set) and moves it onto `finalPath`,
    /// replacing a stale socket there but never another kind of file.
    public func publish(mode: mode_t, groupID: gid_t?) throws(LinuxError) {
        var existing = stat()
        if lstat(finalPath, &existing) == 0, existing.st_mode & S_IFMT != S_IFSOCK {
            throw LinuxError("replace \(finalPath), which is not a socket", code: EEXIST)
        }
        if let groupID, chown(bindPath, geteuid(), groupID) != 0 { throw LinuxError("chown \(finalPath)", code: errno) }
        guard chmod(bindPath, mode) == 0 else { throw LinuxError("chmod \(finalPath)", code: errno) }
        guard rename(bindPath, finalPath) == 0 else { throw LinuxError("rename onto \(finalPath)", code: errno) }
        rmdir(directory)
    }

    /// Removes whatever is left in the private directory, and the directory.
    public func discard() {
        unlink(bindPath)
        rmdir(directory)
    }
}
