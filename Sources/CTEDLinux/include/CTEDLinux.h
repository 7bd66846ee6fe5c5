#pragma once
/*
 * C side of ted's Linux adapters: netlink XFRM messages and socket options whose
 * structs and constants Swift cannot build comfortably. Every function returns 0 or a
 * positive count on success and -errno on failure; none keeps state.
 */
#include <stdint.h>
#include <stddef.h>

/* An XFRM selector: addresses in network order (4 or 16 bytes used), ports in host order. */
typedef struct {
    uint8_t family;            /* 4 or 6 */
    uint8_t proto;             /* 0 = any */
    uint8_t prefixlen_s, prefixlen_d;
    uint8_t saddr[16], daddr[16];
    uint16_t sport, sport_mask, dport, dport_mask;
    int32_t ifindex;           /* 0 = any */
} ted_selector;

/* Opens a NETLINK_XFRM socket; `groups` is a bit mask of multicast groups (ACQUIRE = 1 << 0). */
int ted_xfrm_open(uint32_t groups, int receive_timeout_ms);

/* Adds (or replaces) an outbound policy. `trap` non-zero: a tunnel-mode ESP template with an
 * unknown peer and `reqid`; zero: action allow (bypass), no template. */
int ted_xfrm_add_policy(int fd, const ted_selector *sel, uint32_t priority, int trap, uint32_t reqid);

/* Deletes the outbound policy with exactly this selector. */
int ted_xfrm_delete_policy(int fd, const ted_selector *sel);

/* Dumps outbound policies whose priority lies in [low, high]; fills up to `max` selectors
 * and returns how many were found (possibly more than `max`). */
int ted_xfrm_dump_policies(int fd, uint32_t low, uint32_t high, ted_selector *out, int max);

/* Waits for one netlink message on an ACQUIRE socket; on an ACQUIRE fills `sel` and returns 1,
 * returns 0 on a timeout or another message, -errno on error. */
int ted_xfrm_receive_acquire(int fd, ted_selector *sel);

/* Sends one UDP datagram from a foreign address (IP_TRANSPARENT) with a per-socket XFRM
 * bypass so that ted's own trap policies do not catch it. Addresses in network order. */
int ted_send_transparent(uint8_t family, const uint8_t *src, uint16_t sport,
                         const uint8_t *dst, uint16_t dport, const void *data, size_t length);

/* The same, with the IP TTL / hop limit to send with (0: the default), a firewall mark
 * (SO_MARK, 0: none), and whether the source port must be exactly `sport` (a passed-on
 * probe) rather than any port when it is taken. */
int ted_send_transparent_ex(uint8_t family, const uint8_t *src, uint16_t sport,
                            const uint8_t *dst, uint16_t dport, const void *data, size_t length,
                            int ttl, uint32_t mark, int exact_port);

/* Opens a UDP socket with IP_TRANSPARENT and IP_RECVORIGDSTADDR bound to the wildcard
 * address of `family` on `port` (the nftables TPROXY target). */
int ted_transparent_listener(uint8_t family, uint16_t port, int receive_timeout_ms);

/* Receives one datagram with its source, original destination (network order addresses)
 * and the TTL / hop limit it arrived with (0 when unknown); `overflows` gets the socket's
 * count of datagrams dropped for a full receive buffer so far, when the datagram carries it.
 * Returns the datagram's length, 0 on a timeout, -errno on error. */
int ted_receive_with_original_destination(int fd, void *buffer, size_t capacity,
                                          uint8_t *source, uint16_t *source_port,
                                          uint8_t *destination, uint16_t *destination_port, int *ttl,
                                          uint32_t *overflows);

/* Whether this kernel can hold an ESP state (tries to add and delete one in this namespace). */
int ted_kernel_has_esp(void);

/* Opens a UDP socket bound to address:port WITHOUT SO_REUSEADDR, so no other process can
 * bind the same port beside it. An IPv6 socket also takes IPv4 (mapped). `buffer` > 0 sets
 * both socket buffers to that size (SO_*BUFFORCE as root, else SO_*BUF). Reads block for
 * at most `receive_timeout_ms` (SO_RCVTIMEO); sends never block (ted_send_datagrams).
 * Returns the fd or -errno. */
int ted_udp_bind(uint8_t family, const uint8_t *address, uint16_t port, int buffer, int receive_timeout_ms);

/* Names the calling thread (the first 15 bytes of `name`), for top -H and perf. */
void ted_name_thread(const char *name);

/* The port a socket is bound to, or -errno. */
int ted_local_port(int fd);

/* One datagram to send or received: the peer's address in network order (4 or 16 bytes). */
typedef struct {
    const void *data;
    size_t length;
    uint8_t family;
    uint8_t address[16];
    uint16_t port;
} ted_datagram;

/* Sends up to 64 datagrams with sendmmsg, never blocking. `errors[i]` is 0 or the errno of
 * datagram i: a failed datagram does not stop the others; on EAGAIN (socket buffer full)
 * the rest are dropped with EAGAIN. Returns how many were sent. `socket_family` is the
 * socket's (6: IPv4 destinations are sent IPv4-mapped). */
int ted_send_datagrams(int fd, uint8_t socket_family, const ted_datagram *datagrams, int count, int *errors);

/* Receives up to 64 datagrams with one recvmmsg: blocks until the first arrives (or the
 * socket's receive timeout, or a shutdown), then takes what is already queued. Datagram i
 * is read into storage + i * slot_size, at most slot_size bytes (a longer one arrives cut
 * to slot_size); `datagrams` gets each one's source (IPv4-mapped sources as IPv4; family 0
 * when the kernel named none, as for the empty reads a shutdown brings), length and data
 * pointer. `overflows` gets the kernel's count of datagrams this socket dropped for a full
 * receive buffer so far (SO_RXQ_OVFL, set by ted_udp_bind), when a datagram carries it.
 * Returns how many were read, or -errno (-EAGAIN on the timeout). */
int ted_receive_datagrams(int fd, uint8_t *storage, size_t slot_size, ted_datagram *datagrams, int count,
                          uint32_t *overflows);

/* --- nfnetlink_queue: packets held in the kernel until ted gives a verdict --- */

/* A queued packet: its kernel id, its mark, its length on the wire and the first bytes of
 * its IP header and transport header (`captured` of them). */
typedef struct {
    uint32_t id;
    uint32_t mark;
    uint32_t length;
    uint32_t captured;
    uint8_t header[128];
} ted_queued_packet;

/* Opens a NETLINK_NETFILTER socket bound to queue `queue`, copying the first
 * `sizeof header` bytes of each packet, the kernel holding at most `max_length` packets
 * (more are dropped, never passed: no fail-open). Returns the fd or -errno. */
int ted_nfq_open(uint16_t queue, uint32_t max_length, int receive_timeout_ms);

/* Waits for queued packets; fills up to `max` and returns how many, 0 on a timeout or
 * messages that carry no packet, -errno on error (-ENOBUFS: the kernel dropped some). */
int ted_nfq_receive(int fd, ted_queued_packet *out, int max);

/* Gives queued packet `id` its verdict: accept (with `mark`) or drop. */
int ted_nfq_verdict(int fd, uint16_t queue, uint32_t id, int accept, uint32_t mark);
