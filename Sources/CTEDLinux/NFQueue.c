#define _GNU_SOURCE
#include "CTEDLinux.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>

#define NFQ_BUFFER 65536

/* Appends one netlink attribute to `h` (which has room for it). */
static void put_attribute(struct nlmsghdr *h, uint16_t type, const void *data, uint16_t length) {
    struct nlattr *attribute = (struct nlattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    attribute->nla_type = type;
    attribute->nla_len = NLA_HDRLEN + length;
    memcpy((char *)attribute + NLA_HDRLEN, data, length);
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(attribute->nla_len);
}

static struct nlmsghdr *start_message(char *buffer, size_t size, uint8_t type, uint16_t queue, uint16_t flags) {
    memset(buffer, 0, size);
    struct nlmsghdr *h = (struct nlmsghdr *)buffer;
    h->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | type;
    h->nlmsg_flags = NLM_F_REQUEST | flags;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
    struct nfgenmsg *g = NLMSG_DATA(h);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(queue);
    return h;
}

static int read_packet(const struct nlmsghdr *h, ted_queued_packet *p);

/* Sends a configuration message and waits for its ACK. A packet queued meanwhile (a
 * restart under traffic: the queue rule stayed in place) is read here, before the reader
 * runs: it gets a drop verdict at once, never left held without one. */
static int configure(int fd, struct nlmsghdr *h, uint32_t sequence, uint16_t queue) {
    h->nlmsg_seq = sequence;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
    char buffer[4096];
    /* 16 reads without the ACK, not counting up to 4096 packets: bounded under a flood. */
    for (int attempts = 0, dropped = 0; attempts < 16; attempts++) {
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n < 0) return -errno;
        for (struct nlmsghdr *r = (struct nlmsghdr *)buffer; NLMSG_OK(r, (size_t)n); r = NLMSG_NEXT(r, n)) {
            if (r->nlmsg_seq == sequence && r->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(r))->error;
            ted_queued_packet packet;
            if (r->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)
                && r->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nfgenmsg)) && read_packet(r, &packet)) {
                ted_nfq_verdict(fd, queue, packet.id, 0, 0);
                if (++dropped < 4096) attempts--;
            }
        }
    }
    return -ETIMEDOUT;
}

int ted_nfq_open(uint16_t queue, uint32_t max_length, int receive_timeout_ms) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return -errno;
    struct sockaddr_nl local = { .nl_family = AF_NETLINK };
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { int e = errno; close(fd); return -e; }
    struct timeval tv = { .tv_sec = 1 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int size = 4 << 20;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);

    char buffer[256];
    struct nlmsghdr *h = start_message(buffer, sizeof buffer, NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
    struct nfqnl_msg_config_cmd bind_command = { .command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_UNSPEC) };
    put_attribute(h, NFQA_CFG_CMD, &bind_command, sizeof bind_command);
    int error = configure(fd, h, 1, queue);
    if (error == 0) {
        h = start_message(buffer, sizeof buffer, NFQNL_MSG_CONFIG, queue, NLM_F_ACK);
        struct nfqnl_msg_config_params params = {
            .copy_range = htonl((uint32_t)sizeof(((ted_queued_packet *)0)->header)), .copy_mode = NFQNL_COPY_PACKET };
        put_attribute(h, NFQA_CFG_PARAMS, &params, sizeof params);
        uint32_t length = htonl(max_length);
        put_attribute(h, NFQA_CFG_QUEUE_MAXLEN, &length, sizeof length);
        /* Fail-open off, explicitly: a full queue drops, it never lets a packet through. */
        uint32_t flags = 0, mask = htonl(NFQA_CFG_F_FAIL_OPEN);
        put_attribute(h, NFQA_CFG_MASK, &mask, sizeof mask);
        put_attribute(h, NFQA_CFG_FLAGS, &flags, sizeof flags);
        error = configure(fd, h, 2, queue);
    }
    if (error != 0) { close(fd); return error; }
    if (receive_timeout_ms > 0) {
        tv.tv_sec = receive_timeout_ms / 1000;
        tv.tv_usec = (receive_timeout_ms % 1000) * 1000;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* Reads one NFQNL_MSG_PACKET message (whole inside the buffer); 0 when it has no packet header. */
static int read_packet(const struct nlmsghdr *h, ted_queued_packet *p) {
    memset(p, 0, sizeof *p);
    int has_header = 0;
    uint32_t cap_length = 0;
    const char *end = (const char *)h + h->nlmsg_len;
    const char *cursor = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    while (cursor + NLA_HDRLEN <= end) {
        const struct nlattr *a = (const struct nlattr *)cursor;
        if (a->nla_len < NLA_HDRLEN || cursor + a->nla_len > end) break;
        const char *data = cursor + NLA_HDRLEN;
        uint16_t length = a->nla_len - NLA_HDRLEN;
        uint32_t value;
        switch (a->nla_type & NLA_TYPE_MASK) {
        case NFQA_PACKET_HDR:
            if (length < sizeof(struct nfqnl_msg_packet_hdr)) break;
            memcpy(&value, data, sizeof value);
            p->id = ntohl(value);
            has_header = 1;
            break;
        case NFQA_MARK:
            if (length < 4) break;
            memcpy(&value, data, sizeof value);
            p->mark = ntohl(value);
            break;
        case NFQA_CAP_LEN:
            if (length < 4) break;
            memcpy(&value, data, sizeof value);
            cap_length = ntohl(value);
            break;
        case NFQA_PAYLOAD:
            p->captured = length < sizeof p->header ? length : sizeof p->header;
            memcpy(p->header, data, p->captured);
            p->length = length;
            break;
        }
        cursor += NLA_ALIGN(a->nla_len);
    }
    if (cap_length > p->length) p->length = cap_length;
    return has_header;
}

int ted_nfq_receive(int fd, ted_queued_packet *out, int max) {
    char buffer[NFQ_BUFFER];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    int count = 0;
    size_t left = (size_t)n, offset = 0;
    /* Each message must lie whole inside what was received; the walk stops at the first that does not. */
    while (count < max && left >= sizeof(struct nlmsghdr)) {
        struct nlmsghdr *h = (struct nlmsghdr *)(buffer + offset);
        if (h->nlmsg_len < sizeof(struct nlmsghdr) || h->nlmsg_len > left) break;
        size_t step = NLMSG_ALIGN(h->nlmsg_len);
        if (h->nlmsg_type == ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET) && h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct nfgenmsg))) {
            if (read_packet(h, &out[count])) count++;
        }
        if (step >= left) break;
        offset += step;
        left -= step;
    }
    return count;
}

int ted_nfq_verdict(int fd, uint16_t queue, uint32_t id, int accept, uint32_t mark) {
    char buffer[128];
    struct nlmsghdr *h = start_message(buffer, sizeof buffer, NFQNL_MSG_VERDICT, queue, 0);
    struct nfqnl_msg_verdict_hdr verdict = { .verdict = htonl(accept ? NF_ACCEPT : NF_DROP), .id = htonl(id) };
    put_attribute(h, NFQA_VERDICT_HDR, &verdict, sizeof verdict);
    if (accept) {
        uint32_t value = htonl(mark);
        put_attribute(h, NFQA_MARK, &value, sizeof value);
    }
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    return sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0 ? -errno : 0;
}
