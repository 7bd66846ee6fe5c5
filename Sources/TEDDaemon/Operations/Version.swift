/// What `ted --version` prints and `ted_build_info` shows: the version and the git commit
/// of the source it was built from.
///
/// A plain `swift build` uses these defaults; `scripts/package-deb.sh` writes this file anew
/// in the copy of the repository it builds, with the package's version and `git rev-parse HEAD`.
public enum Version {
    public static let number = "0.1.0"
    public static let commit = "unknown"

    public static var line: String { "\(number) (commit \(commit))" }
}
