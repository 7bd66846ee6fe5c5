#if canImport(Glibc)
import Glibc
#endif

/// glibc's `malloc_trim(0)` over every arena, looked up at run time (the Glibc module does
/// not export malloc.h); nothing where it does not exist.
public func releaseFreedHeap() {
    typealias MallocTrim = @convention(c) (Int) -> Int32
    if let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "malloc_trim") {
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
    }
}

/// Keeps allocations of 128 KiB and more in their own mappings, returned to the system when
/// freed (glibc's `mallopt(M_MMAP_THRESHOLD, 128 KiB)`; glibc otherwise raises the threshold
/// after the first large free, and the big arrays of a policy load then stay resident).
/// Call before loading the configuration.
public func keepLargeAllocationsMapped() {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in malloc.h
    if let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "mallopt") {
        _ = unsafeBitCast(symbol, to: Mallopt.self)(mmapThreshold, 128 * 1024)
    }
}
