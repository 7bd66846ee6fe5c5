"""A layer-2 relay between two interfaces that holds every frame for a fixed delay.

This kernel has no netem, so the time-to-first-packet benchmark cables two gateways
through this relay to add one-way delay. Runs until killed; bounded queue.
"""
import heapq
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def main() -> None:
    left, right, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sockets = {}
    for name in (left, right):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        s.setblocking(False)
        sockets[name] = s
    other = {sockets[left]: sockets[right], sockets[right]: sockets[left]}
    queue: list = []
    sequence = 0
    delay = delay_ms / 1000.0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        readable, _, _ = select.select(list(other), [], [], timeout)
        for s in readable:
            for _ in range(64):
                try:
                    frame, address = s.recvfrom(65535)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING or len(queue) > 100000:
                    continue
                sequence += 1
                heapq.heappush(queue, (time.monotonic() + delay, sequence, other[s], frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:
                pass


if __name__ == "__main__":
    main()
