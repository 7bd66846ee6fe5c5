#!/usr/bin/env python3
"""Hostile traffic against a ted responder (run inside the attacker namespace by scripts/soak.sh).

`soak.py TARGET N BAD-IDENTITIES LEGIT-ADDRESS IFACE` sends N hostile datagrams (raw IPv4,
forged sources from many prefixes), captures every response that leaves the responder, and
prints one JSON object of what it measured. `soak.py legit TARGET ADDRESS STOP-FILE` is the
legitimate initiator, run beside it in its own process: a probe every 10 ms.
`soak.py flood TARGET[:PORT] VICTIM[:PORT] SITES SECONDS RATE` is the forged flood of issue 21,
from a host off every probe's path: valid probes naming VICTIM (an identity address and TED
port, 500 by default), from IP sources forged inside the victim's site (SITES: IPv4 prefixes,
comma-separated, taken in turn; a source in any host of one), 8192 of them taken in turn,
RATE a second (0: as fast as this host sends) for SECONDS, sent to TARGET (port 500 by default), or with TARGET `path` to
each probe's own packet destination (inside 198.18.2.0/24), port 500, as probes travel.
"""
import json, os, random, socket, struct, sys, threading, time

TED_HASH = bytes.fromhex("8320355d3c37c2d95badba15e73c79f5")


def probe(cookie, identity, ident_port=500, src="198.18.1.10", dst="198.18.2.20", sport=40000, dport=443,
          proto=6, padding=None):
    ident = socket.inet_aton(identity)
    vid = struct.pack("!BBH", 5, 0, 24) + TED_HASH + struct.pack("!I", 3)
    idp = struct.pack("!BBH", 240, 0, 12) + struct.pack("!BBH", 1, 17, ident_port) + ident
    summ = TED_HASH + struct.pack("!BBBBHH", 3, 4, proto, 3, sport, dport) + socket.inet_aton(src) + socket.inet_aton(dst)
    summary = struct.pack("!BBH", 242 if padding is not None else 0, 0, 36) + summ
    pad = b"" if padding is None else struct.pack("!BBH", 0, 0, 4 + padding) + bytes(padding)
    body = vid + idp + summary + pad
    header = struct.pack("!QQBBBBII", cookie, 0, 13, 0x10, 240, 0, 0, 28 + len(body))
    return header + body


def forged_response(cookie, identity="198.51.100.66"):
    ident = socket.inet_aton(identity)
    vid = struct.pack("!BBH", 5, 0, 24) + TED_HASH + struct.pack("!I", 3)
    idp = struct.pack("!BBH", 241, 0, 12) + struct.pack("!BBH", 1, 17, 500) + ident
    entry = struct.pack("!BBHHHHH", 0, 0, 0, 0, 65535, 0, 65535) + bytes(16)
    resp = struct.pack("!BBH", 0, 0, 8 + 28) + struct.pack("!BBBB", 3, 4, 1, 0) + entry
    body = vid + idp + resp
    return struct.pack("!QQBBBBII", cookie, 1, 13, 0x10, 241, 0, 0, 28 + len(body)) + body


def ipv4_udp(src, dst, sport, dport, payload):
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    total = 20 + len(udp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, random.randrange(65536), 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    return ip + udp


def legit_main():
    """The legitimate initiator, in a process of its own: a probe every 10 ms until a file appears."""
    target, legit_addr, stop_file = sys.argv[2], sys.argv[3], sys.argv[4]
    legit = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    legit.bind((legit_addr, 0))
    port = legit.getsockname()[1]
    legit.settimeout(0.01)
    sent, rtts, outstanding, cookie = 0, [], {}, 1 << 60
    while not os.path.exists(stop_file):
        cookie += 1
        start = time.monotonic()
        outstanding[cookie] = start
        legit.sendto(probe(cookie, legit_addr, port), (target, 500))
        sent += 1
        while time.monotonic() < start + 0.01:
            try:
                data = legit.recv(4096)
            except socket.timeout:
                break
            c = struct.unpack("!Q", data[:8])[0]
            if c in outstanding and data[18] == 241:
                rtts.append(time.monotonic() - outstanding.pop(c))
        time.sleep(max(0, start + 0.01 - time.monotonic()))
    legit.settimeout(0.2)
    try:
        while outstanding:
            data = legit.recv(4096)
            c = struct.unpack("!Q", data[:8])[0]
            if c in outstanding and data[18] == 241:
                rtts.append(time.monotonic() - outstanding.pop(c))
    except socket.timeout:
        pass
    rtts.sort()
    p99 = rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * 1000 if rtts else None
    print(json.dumps({"legit_sent": sent, "legit_answered": len(rtts),
                      "legit_p99_ms": None if p99 is None else round(p99, 3)}))


def flood_main():
    """Forged valid probes for one victim identity, bounded in count and time; prints what it
    sent (IP bytes, as the responder's counters count them). RATE 0: as fast as this host
    sends (the datagrams are built before the clock starts, 8192 of them, sent in turn)."""
    def endpoint(text):
        address, _, port = text.partition(":")
        return address, int(port or 500)
    (target, target_port), (victim, victim_port) = endpoint(sys.argv[2]), endpoint(sys.argv[3])
    sites = []
    for prefix in sys.argv[4].split(","):
        address, length = prefix.split("/")
        base = struct.unpack("!I", socket.inet_aton(address))[0] & (0xffffffff << (32 - int(length))) & 0xffffffff
        sites.append((base, 1 << (32 - int(length))))
    seconds, rate = float(sys.argv[5]), float(sys.argv[6])
    rng = random.Random(21)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    pool = []
    for index in range(8192):
        base, size = sites[index % len(sites)]
        src = socket.inet_ntoa(struct.pack("!I", base + 2 + rng.randrange(size - 4)))
        sport = 1024 + rng.randrange(60000)
        dst = "198.18.2.%d" % (2 + rng.randrange(250))
        payload = probe(rng.randrange(1, 1 << 62), victim, victim_port, src=src, dst=dst, sport=sport, dport=443)
        to = dst if target == "path" else target
        pool.append((ipv4_udp(src, to, sport, target_port, payload), (to, 0)))
    total = int(seconds * rate) if rate > 0 else 1 << 62
    sent, sent_bytes = 0, 0
    # Paced every half millisecond: a bucket's token that appears between two bursts must
    # not wait long for the flood to take it.
    batch = max(1, int(rate / 2000)) if rate > 0 else 256
    started = time.monotonic()
    deadline = started + seconds + (5 if rate > 0 else 0)
    while sent < total and time.monotonic() < deadline:
        for _ in range(batch):
            datagram, to = pool[sent % len(pool)]
            try:
                raw.sendto(datagram, to)
            except BlockingIOError:
                continue
            sent += 1
            sent_bytes += len(datagram)
        if rate > 0:
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    elapsed = time.monotonic() - started
    print(json.dumps({"flood_sent": sent, "flood_bytes": sent_bytes, "flood_seconds": round(elapsed, 2),
                      "flood_rate": round(sent / elapsed)}))


def main():
    if sys.argv[1] == "legit":
        return legit_main()
    if sys.argv[1] == "flood":
        return flood_main()
    target, n, bad_identities = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(",")
    legit_iface = sys.argv[5]
    rng = random.Random(7)
    rate = float(os.environ.get("SOAK_RATE", "3000"))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)

    # Every datagram the responder sends towards us, seen on our interface.
    capture = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    capture.bind((legit_iface, 0x0800))
    capture.settimeout(0.2)
    responses = []  # (time, destination, size, cookie, exchange): 241 responses, 242 challenges
    stop = threading.Event()

    def sniff():
        while not stop.is_set():
            try:
                packet = capture.recv(65535)
            except socket.timeout:
                continue
            if len(packet) < 28 or packet[9] != 17:
                continue
            ihl = (packet[0] & 15) * 4
            sport = struct.unpack("!H", packet[ihl:ihl + 2])[0]
            payload = packet[ihl + 8:]
            if sport == 500 and len(payload) >= 28 and payload[18] in (241, 242):
                responses.append((time.monotonic(), socket.inet_ntoa(packet[16:20]), len(payload),
                                  struct.unpack("!Q", payload[:8])[0], payload[18]))

    sniffer = threading.Thread(target=sniff, daemon=True)
    sniffer.start()

    # Hostile mix. Sizes of the valid probes we forge, by cookie, for the amplification ratio.
    probe_sizes = {}
    valid = probe(0x1111, "203.0.113.50")
    kinds = ["random", "mutation", "bad-identity", "forged-response", "oversize", "flood-many-sources", "victim"]
    counts = {k: 0 for k in kinds}
    started = time.monotonic()
    for i in range(n):
        kind = kinds[i % len(kinds)]
        src = "203.0.113.%d" % (1 + rng.randrange(200)) if kind != "flood-many-sources" else \
              "198.18.%d.%d" % (64 + rng.randrange(60), 1 + rng.randrange(250))
        sport = 1024 + rng.randrange(60000)
        if kind == "random":
            payload = os.urandom(rng.randrange(1, 300))
        elif kind == "mutation":
            payload = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                payload[rng.randrange(len(payload))] = rng.randrange(256)
            payload = bytes(payload)
        elif kind == "bad-identity":
            payload = probe(rng.randrange(1, 1 << 62), bad_identities[i % len(bad_identities)])
        elif kind == "forged-response":
            payload = forged_response(rng.randrange(1, 1 << 62))
        elif kind == "oversize":
            payload = valid + os.urandom(4097 - len(valid) + rng.randrange(100))
        else:
            cookie = rng.randrange(1, 1 << 62)
            padding = rng.choice([None, None, 0, 40, 200])
            # Many source prefixes aiming at a few victims (reflection), and one victim from one
            # prefix; each victim /24 may receive at most its target bucket.
            victim = "203.0.113.50" if kind == "victim" else "198.18.%d.7" % rng.randrange(64, 68)
            payload = probe(cookie, victim, padding=padding)
            probe_sizes[cookie] = len(payload)
        counts[kind] += 1
        raw.sendto(ipv4_udp(src, target, sport, 500, payload), (target, 0))
        if i % 64 == 63:
            # Paced (SOAK_RATE datagrams/s): a flood above what the host can read is lost in the
            # kernel's socket buffer for everyone alike, whatever ted does with what it reads.
            ahead = started + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    hostile_seconds = time.monotonic() - started
    time.sleep(1.0)
    stop.set()
    sniffer.join(1)

    # Responses are bounded per identity by the target bucket; challenges (which the victim
    # kinds draw once that bucket is spent) by their size, never above their probe's.
    per_second = {}
    worst_ratio = {241: 0.0, 242: 0.0}
    for (t, dst, size, cookie, exchange) in responses:
        if exchange == 241:
            key = (dst, int(t - started))
            per_second[key] = per_second.get(key, 0) + 1
        if cookie in probe_sizes:
            worst_ratio[exchange] = max(worst_ratio[exchange], size / probe_sizes[cookie])
    print(json.dumps({
        "hostile_sent": n, "hostile_seconds": round(hostile_seconds, 2), "kinds": counts,
        "responses_seen": sum(r[4] == 241 for r in responses),
        "challenges_seen": sum(r[4] == 242 for r in responses),
        "largest_ratio": round(worst_ratio[241], 3), "largest_challenge_ratio": round(worst_ratio[242], 3),
        "max_per_identity_per_second": max(per_second.values()) if per_second else 0,
    }))


if __name__ == "__main__":
    main()
