"""Time to first packet: hostA sends a UDP datagram every 10 ms to hostB; the time from
the first send to the first datagram delivered at hostB, with ted discovering the peer,
beside strongSwan alone with the peer configured statically and initiated over VICI at
the first packet (a persistent VICI session, so no process start is counted).

With KIND tcp: the time from a TCP client's connect() on hostA to the first byte echoed
back from hostB, over a tunnel that does not exist yet (ted, or static initiated at the
connect), or that is up already (static-up: the floor, one TCP round trip through it).

Usage: ttfp.py MODE TOPO-PREFIX VICI-A RUNS [udp|tcp]   (MODE: ted | static | static-up).
Prints JSON.
"""
import ctypes
import json
import os
import socket
import statistics
import sys
import threading
import time

import vici

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def in_netns(name, make):
    """Creates something (a socket) inside a network namespace; it stays there."""
    original = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/var/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        return make()
    finally:
        libc.setns(original, CLONE_NEWNET)
        os.close(target)
        os.close(original)


def udp(bind=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind:
        s.bind(bind)
    return s


def one_run(mode, topo, session):
    receiver = in_netns(f"{topo}-hB", lambda: udp(("198.18.2.20", 9000)))
    sender = in_netns(f"{topo}-hA", lambda: udp())
    receiver.settimeout(0.01)
    first = {}

    def receive():
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and "arrival" not in first:
            try:
                receiver.recv(2048)
                first["arrival"] = time.monotonic()
            except socket.timeout:
                pass

    thread = threading.Thread(target=receive)
    thread.start()
    start = time.monotonic()
    sequence = 0
    while "arrival" not in first and time.monotonic() - start < 8:
        sender.sendto(sequence.to_bytes(4, "big"), ("198.18.2.20", 9000))
        if sequence == 0 and mode == "static":
            threading.Thread(target=lambda: list(session.initiate({"child": "static", "ike": "static", "timeout": 5000}))).start()
        sequence += 1
        next_send = start + sequence * 0.010
        time.sleep(max(0.0, next_send - time.monotonic()))
    thread.join()
    receiver.close()
    sender.close()
    return (first["arrival"] - start) * 1000 if "arrival" in first else None


def tcp_run(mode, topo, session):
    server = in_netns(f"{topo}-hB", lambda: socket.create_server(("198.18.2.20", 9001)))
    client = in_netns(f"{topo}-hA", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
    server.settimeout(8)

    def echo():
        try:
            peer, _ = server.accept()
            with peer:
                peer.settimeout(8)
                peer.sendall(peer.recv(1))
        except OSError:
            pass

    thread = threading.Thread(target=echo)
    thread.start()
    if mode == "static-up":
        list(session.initiate({"child": "static", "ike": "static", "timeout": 5000}))
    client.settimeout(8)
    start = time.monotonic()
    if mode == "static":
        threading.Thread(target=lambda: list(session.initiate({"child": "static", "ike": "static", "timeout": 5000}))).start()
    elapsed = None
    try:
        client.connect(("198.18.2.20", 9001))
        client.sendall(b"x")
        if client.recv(1) == b"x":
            elapsed = (time.monotonic() - start) * 1000
    except OSError:
        pass
    client.close()
    thread.join()
    server.close()
    return elapsed


def main():
    mode, topo, vici_path, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    kind = sys.argv[5] if len(sys.argv) > 5 else "udp"
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(vici_path)
    session = vici.Session(connection)
    results = []

    def tear_down():
        for sa in list(session.list_sas()):
            for name in sa:
                list(session.terminate({"ike": name, "timeout": 2000}))

    for _ in range(runs):
        # Each run starts from nothing: a late packet of the last run (a TCP FIN) may have
        # brought a tunnel back up meanwhile.
        tear_down()
        time.sleep(2.5)
        tear_down()
        results.append(tcp_run(mode, topo, session) if kind == "tcp" else one_run(mode, topo, session))
    good = [r for r in results if r is not None]
    print(json.dumps({"mode": mode, "kind": kind, "runs_ms": [round(r, 1) if r is not None else None for r in results],
                      "median_ms": round(statistics.median(good), 1) if good else None}))


if __name__ == "__main__":
    main()
