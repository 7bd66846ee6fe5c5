import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Tests that need root (network namespaces, XFRM, a real charon): they run as root and in
/// CI (where a missing privilege is a failure, never a pass); elsewhere Swift Testing
/// reports them skipped, with why, instead of counting them as passed.
public enum RootTests {
    public static var runnable: Bool { geteuid() == 0 || ProcessInfo.processInfo.environment["CI"] != nil }
}
