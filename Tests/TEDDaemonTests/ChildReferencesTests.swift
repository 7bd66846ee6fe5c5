import Testing
@testable import TEDDaemon

/// Kernel objects shared by child SAs: installed with the first holder, removed with the last.
@Suite struct ChildReferencesTests {
    @Test func aSharedKeyStaysUntilItsLastChildGoes() {
        var references = ChildReferences<String>()
        #expect(references.add("a-1", ["x", "y"]).sorted() == ["x", "y"])
        #expect(references.add("b-2", ["y", "z"]).sorted() == ["z"])
        #expect(references.add("b-2", ["q"]) == [], "a child recorded twice changes nothing")
        #expect(references.remove("a-1") == ["x"])
        #expect(references.keys.sorted() == ["y", "z"])
        #expect(references.remove("a-1") == [], "an unknown child removes nothing")
        #expect(references.remove("b-2").sorted() == ["y", "z"])
        #expect(references.keys.isEmpty)
    }

    @Test func aChildListingAKeyTwiceHoldsItOnce() {
        var references = ChildReferences<String>()
        #expect(references.add("a-1", ["x", "x"]) == ["x"])
        #expect(references.remove("a-1") == ["x"])
        #expect(references.keys.isEmpty)
    }

    @Test func aRekeyMovesTheKeysToTheNewChild() {
        var references = ChildReferences<String>()
        _ = references.add("a-1", ["x"])
        #expect(references.rename("a-1", to: "a-2") == [])
        #expect(!references.holds("a-1") && references.holds("a-2"))
        #expect(references.remove("a-1") == [], "the old name is gone")
        #expect(references.remove("a-2") == ["x"], "the successor's going down removes the key")
    }

    @Test func aRekeyWhoseSuccessorWasAlreadyUpForgetsTheOldChild() {
        var references = ChildReferences<String>()
        _ = references.add("a-1", ["x"])
        _ = references.add("a-2", ["x"])
        #expect(references.rename("a-1", to: "a-2") == [])
        #expect(references.keys == ["x"])
        #expect(references.remove("a-2") == ["x"])
        #expect(references.rename("gone-1", to: "gone-2") == [])
    }
}
