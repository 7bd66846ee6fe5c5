import TEDBenchSupport

/// SplitMix64: a small seeded generator so every run of a property test sees the same numbers.
public typealias SeededRNG = SplitMix64
