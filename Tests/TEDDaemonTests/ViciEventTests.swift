import Testing
@testable import TEDVici
@testable import TEDDaemon

/// child-updown and ike-updown messages as charon sends them, turned into ted's events.
@Suite struct ViciEventTests {
    func message(up: Bool, children: [(String, [String], [String])]) -> ViciMessage {
        var childSAs = ViciMessage()
        for (name, local, remote) in children {
            var child = ViciMessage()
            child.add("local-ts", list: local)
            child.add("remote-ts", list: remote)
            childSAs.add(name, section: child)
        }
        var sa = ViciMessage()
        sa.add("remote-host", "198.51.100.2")
        sa.add("child-sas", section: childSAs)
        var message = ViciMessage()
        if up { message.add("up", "yes") }
        message.add("ted-198-51-100-2-e462bba", section: sa)
        return message
    }

    @Test func childUpCarriesItsSelectors() {
        let events = ViciController.events(name: "child-updown",
                                           message: message(up: true, children: [("ted-198-51-100-2-e462bba-2", ["198.18.1.0/24[tcp]"], ["198.18.2.0/24[tcp/https]"])]))
        #expect(events == [IKEEvent(kind: .childUp, connection: "ted-198-51-100-2-e462bba", remoteAddress: "198.51.100.2",
                                    child: "ted-198-51-100-2-e462bba-2", localTS: ["198.18.1.0/24[tcp]"],
                                    remoteTS: ["198.18.2.0/24[tcp/https]"])])
    }

    /// charon's `log` stream: only a line saying one of ted's IKE SAs could not install a
    /// child becomes an event; everything else in the stream is left alone.
    @Test func aChildThatCannotBeInstalledIsTheOnlyLogLineTaken() {
        func log(_ connection: String?, _ line: String) -> ViciMessage {
            var message = ViciMessage()
            message.add("group", "KNL")
            message.add("level", "1")
            if let connection {
                message.add("ikesa-name", connection)
                message.add("ikesa-uniqueid", "4")
            }
            message.add("msg", line)
            return message
        }
        let route = "error installing route with policy 198.18.1.64/26[udp] === 198.18.2.0/24[udp/7101] out"
        #expect(ViciController.events(name: "log", message: log("ted-198-51-100-2-e462bba", route))
            == [IKEEvent(kind: .childInstallFailed, connection: "ted-198-51-100-2-e462bba", remoteAddress: nil, ikeID: "4", reason: route)])
        #expect(ViciController.events(name: "log", message: log("ted-responder-p1", "unable to install IPsec policies (SPD) in kernel"))
            .map(\.kind) == [.childInstallFailed])
        #expect(ViciController.events(name: "log", message: log("someone-else", route)).isEmpty)
        #expect(ViciController.events(name: "log", message: log(nil, route)).isEmpty)
        #expect(ViciController.events(name: "log", message: log("ted-responder-p1", "received TS_UNACCEPTABLE notify")).isEmpty)
    }

    @Test func ikeDownWithoutUpFlag() {
        let events = ViciController.events(name: "ike-updown", message: message(up: false, children: []))
        #expect(events.map(\.kind) == [.ikeDown])
        #expect(events.first?.connection == "ted-198-51-100-2-e462bba")
        var sa = ViciMessage()
        sa.add("uniqueid", "7")
        var withID = ViciMessage()
        withID.add("ted-responder", section: sa)
        #expect(ViciController.events(name: "ike-updown", message: withID).first?.ikeID == "7")
    }

    @Test func childRekeyNamesTheOldAndTheNewChildSA() {
        func child(_ id: String) -> ViciMessage {
            var child = ViciMessage()
            child.add("name", "ted-198-51-100-2-e462bba")
            child.add("uniqueid", id)
            child.add("local-ts", list: ["198.18.1.0/24[tcp]"])
            child.add("remote-ts", list: ["198.18.2.0/24[tcp/https]"])
            return child
        }
        var rekey = ViciMessage()
        rekey.add("old", section: child("2"))
        rekey.add("new", section: child("5"))
        var childSAs = ViciMessage()
        childSAs.add("ted-198-51-100-2-e462bba", section: rekey)
        var sa = ViciMessage()
        sa.add("remote-host", "198.51.100.2")
        sa.add("child-sas", section: childSAs)
        var message = ViciMessage()
        message.add("ted-198-51-100-2-e462bba", section: sa)
        let events = ViciController.events(name: "child-rekey", message: message)
        #expect(events.count == 1)
        #expect(events.first?.kind == .childRekey)
        #expect(events.first?.previousChild == "ted-198-51-100-2-e462bba-2")
        #expect(events.first?.child == "ted-198-51-100-2-e462bba-5")
        #expect(events.first?.owner == "ted-198-51-100-2-e462bba")
    }
}
