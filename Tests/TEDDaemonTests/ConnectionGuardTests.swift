import Testing
@testable import TEDDaemon

/// Which connection makes room at the cap: the oldest idle one, else the oldest; a
/// newcomer is never refused.
@Suite struct ConnectionSlotsTests {
    static func full(_ capacity: Int = 3) -> ConnectionSlots<Int> {
        var slots = ConnectionSlots<Int>(capacity: capacity)
        for id in 1...capacity { #expect(slots.admit(id) == nil) }
        return slots
    }

    @Test func belowTheCapNothingIsClosed() {
        var slots = ConnectionSlots<Int>(capacity: 3)
        #expect(slots.admit(1) == nil)
        #expect(slots.admit(2) == nil)
        #expect(slots.count == 2)
    }

    @Test func atTheCapTheOldestIsClosed() {
        var slots = Self.full()
        #expect(slots.admit(4) == 1)
        #expect(slots.admit(5) == 2)
        #expect(slots.count == 3)
    }

    @Test func atTheCapTheOldestIdleIsClosedBeforeABusyOne() {
        var slots = Self.full()
        slots.setBusy(1, true)
        slots.setBusy(3, true)
        #expect(slots.admit(4) == 2)
        #expect(slots.admit(5) == 4)
    }

    @Test func whenEveryConnectionIsBusyTheOldestIsClosed() {
        var slots = Self.full()
        for id in 1...3 { slots.setBusy(id, true) }
        #expect(slots.admit(4) == 1)
        #expect(slots.count == 3)
    }

    @Test func aConnectionAnsweredIsIdleAgain() {
        var slots = Self.full()
        slots.setBusy(1, true)
        slots.setBusy(1, false)
        #expect(slots.admit(4) == 1)
    }

    @Test func aReleasedSlotIsFreeAndAReleaseOfNoSlotChangesNothing() {
        var slots = Self.full()
        slots.release(2)
        slots.release(2)
        slots.release(9)
        #expect(slots.count == 2)
        #expect(slots.admit(4) == nil)
        #expect(slots.admit(5) == 1)
    }

    @Test func aCapBelowOneHoldsOne() {
        var slots = ConnectionSlots<Int>(capacity: 0)
        #expect(slots.admit(1) == nil)
        #expect(slots.admit(2) == 1)
    }
}
