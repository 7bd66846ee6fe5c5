import TEDLinux

/// Returns freed heap pages to the system once the daemon is up.
///
/// Start-up with a large policy frees tens of megabytes of temporaries (the YAML tree,
/// the classifier's build lists, per-entry copies) that glibc keeps resident in its
/// arenas; `malloc_trim` gives them back. Started last, so it runs after everything else
/// has been built.
struct FreedHeapRelease: DaemonPlugin {
    func start(node: TEDNode) async throws {
        releaseFreedHeap()
    }

    func stop() async {}
}
