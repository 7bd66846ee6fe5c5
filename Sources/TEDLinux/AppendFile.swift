#if canImport(Glibc)
import Glibc
#endif

/// A file opened for appending (created with `mode` when missing), with what a writer of
/// records needs: its size and kind, reads at an offset, truncation, whole appends and
/// renaming. Not thread-safe: one owner uses it.
public final class AppendFile {
    public let path: String
    /// Bytes in the file, appends included.
    public private(set) var size: Int
    /// Whether it is a regular file (not a device, FIFO or socket).
    public let isRegularFile: Bool
    private let fd: Int32

    public init(path: String, mode: mode_t) throws(LinuxError) {
        let fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LinuxError("open \(path)", code: errno) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            close(fd)
            throw LinuxError("stat \(path)", code: code)
        }
        self.path = path
        self.fd = fd
        size = Int(info.st_size)
        isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
    }

    deinit { close(fd) }

    /// Up to `count` bytes from `offset`; fewer at the end of the file or on an error.
    public func read(at offset: Int, count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        return read > 0 ? Array(bytes[0..<read]) : []
    }

    /// Cuts the file to `length` bytes.
    public func truncate(to length: Int) -> Bool {
        guard ftruncate(fd, off_t(length)) == 0 else { return false }
        size = length
        return true
    }

    /// Appends all of `bytes`, retrying short writes.
    public func append(_ bytes: [UInt8]) throws(LinuxError) {
        var failure: Int32 = 0
        let done = bytes.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let written = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if written < 0, errno == EINTR { continue }
                guard written > 0 else {
                    failure = written < 0 ? errno : EIO
                    break
                }
                done += written
            }
            return done
        }
        size += done
        if done < bytes.count { throw LinuxError("write \(path)", code: failure) }
    }

    /// Renames `path` to `newPath`, replacing it; true also when there is no `path`.
    public static func rename(_ path: String, to newPath: String) -> Bool {
        Glibc.rename(path, newPath) == 0 || errno == ENOENT
    }
}
