import Testing
import TEDTestSupport
@testable import TEDEngine

@Suite struct BoundedLRUTests {
    @Test func evictsTheLeastRecentlyUsed() {
        var table = BoundedLRU<Int, String>(capacity: 3)
        table.insert("a", for: 1)
        table.insert("b", for: 2)
        table.insert("c", for: 3)
        #expect(table.use(1) == "a")
        let evicted = table.insert("d", for: 4)
        #expect(evicted?.key == 2)
        #expect(table.newestFirst.map(\.key) == [4, 1, 3])
        #expect(table.count == 3)
    }

    @Test func replacingKeepsTheSizeAndRefreshes() {
        var table = BoundedLRU<Int, Int>(capacity: 2)
        table.insert(1, for: 1)
        table.insert(2, for: 2)
        #expect(table.insert(10, for: 1) == nil)
        #expect(table.peek(1) == 10)
        #expect(table.insert(3, for: 3)?.key == 2)
    }

    @Test func capacityZeroHoldsNothing() {
        var table = BoundedLRU<Int, Int>(capacity: 0)
        #expect(table.insert(1, for: 1)?.key == 1)
        #expect(table.isEmpty)
        var negative = BoundedLRU<Int, Int>(capacity: -5)
        negative.insert(1, for: 1)
        #expect(negative.isEmpty)
    }

    /// Random operations against a plain array kept in recency order.
    @Test(arguments: 0..<20)
    func matchesAReferenceModel(seed: Int) {
        var rng = SeededRNG(seed: UInt64(seed))
        let capacity = Int.random(in: 1...8, using: &rng)
        var table = BoundedLRU<Int, Int>(capacity: capacity)
        var model: [(key: Int, value: Int)] = []
        for step in 0..<2000 {
            let key = Int.random(in: 0..<12, using: &rng)
            switch Int.random(in: 0..<5, using: &rng) {
            case 0, 1:
                let evicted = table.insert(step, for: key)
                if let index = model.firstIndex(where: { $0.key == key }) {
                    model.remove(at: index)
                    model.insert((key, step), at: 0)
                    #expect(evicted == nil)
                } else {
                    model.insert((key, step), at: 0)
                    let expected = model.count > capacity ? model.removeLast() : nil
                    #expect(evicted?.key == expected?.key)
                }
            case 2:
                let got = table.use(key)
                if let index = model.firstIndex(where: { $0.key == key }) {
                    #expect(got == model[index].value)
                    model.insert(model.remove(at: index), at: 0)
                } else {
                    #expect(got == nil)
                }
            case 3:
                let got = table.removeValue(for: key)
                let index = model.firstIndex(where: { $0.key == key })
                #expect(got == index.map { model[$0].value })
                if let index { model.remove(at: index) }
            default:
                let cut = Int.random(in: 0..<12, using: &rng)
                let removed = table.removeAll { k, _ in k < cut }
                let before = model.count
                model.removeAll { $0.key < cut }
                #expect(removed == before - model.count)
            }
            #expect(table.count <= capacity)
            #expect(table.newestFirst.map(\.key) == model.map(\.key))
        }
    }
}
