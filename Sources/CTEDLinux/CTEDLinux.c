#define _GNU_SOURCE
#include "CTEDLinux.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <linux/in6.h>

#ifndef IP_TRANSPARENT
#define IP_TRANSPARENT 19
#endif
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IPV6_RECVORIGDSTADDR
#define IPV6_RECVORIGDSTADDR 74
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

#define TED_NLMSG_MAX 8192

static int af_of(uint8_t family) { return family == 6 ? AF_INET6 : AF_INET; }

int ted_xfrm_open(uint32_t groups, int receive_timeout_ms) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
    if (fd < 0) return -errno;
    struct sockaddr_nl local = { .nl_family = AF_NETLINK, .nl_groups = groups };
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { int e = errno; close(fd); return -e; }
    if (receive_timeout_ms > 0) {
        struct timeval tv = { .tv_sec = receive_timeout_ms / 1000, .tv_usec = (receive_timeout_ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    int size = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    return fd;
}

static void fill_selector(struct xfrm_selector *out, const ted_selector *sel) {
    memset(out, 0, sizeof *out);
    out->family = af_of(sel->family);
    size_t n = sel->family == 6 ? 16 : 4;
    memcpy(&out->saddr, sel->saddr, n);
    memcpy(&out->daddr, sel->daddr, n);
    out->prefixlen_s = sel->prefixlen_s;
    out->prefixlen_d = sel->prefixlen_d;
    out->proto = sel->proto;
    out->sport = htons(sel->sport);
    out->sport_mask = htons(sel->sport_mask);
    out->dport = htons(sel->dport);
    out->dport_mask = htons(sel->dport_mask);
    out->ifindex = sel->ifindex;
    out->user = (__kernel_uid32_t)-1;
}

static void read_selector(ted_selector *out, const struct xfrm_selector *sel) {
    memset(out, 0, sizeof *out);
    out->family = sel->family == AF_INET6 ? 6 : 4;
    size_t n = out->family == 6 ? 16 : 4;
    memcpy(out->saddr, &sel->saddr, n);
    memcpy(out->daddr, &sel->daddr, n);
    out->prefixlen_s = sel->prefixlen_s;
    out->prefixlen_d = sel->prefixlen_d;
    out->proto = sel->proto;
    out->sport = ntohs(sel->sport);
    out->sport_mask = ntohs(sel->sport_mask);
    out->dport = ntohs(sel->dport);
    out->dport_mask = ntohs(sel->dport_mask);
    out->ifindex = sel->ifindex;
}

/* Sends a request and waits for its netlink ACK; returns 0 or -errno from the kernel. */
static int transact(int fd, struct nlmsghdr *request) {
    static uint32_t sequence = 1;
    request->nlmsg_seq = __atomic_fetch_add(&sequence, 1, __ATOMIC_RELAXED);
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, request, request->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
    char buffer[TED_NLMSG_MAX];
    for (int attempts = 0; attempts < 64; attempts++) {
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n < 0) return -errno;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_seq != request->nlmsg_seq) continue;
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *err = NLMSG_DATA(h);
                return err->error;
            }
        }
    }
    return -ETIMEDOUT;
}

int ted_xfrm_add_policy(int fd, const ted_selector *sel, uint32_t priority, int trap, uint32_t reqid) {
    char buffer[NLMSG_SPACE(sizeof(struct xfrm_userpolicy_info)) + RTA_SPACE(sizeof(struct xfrm_user_tmpl))];
    memset(buffer, 0, sizeof buffer);
    struct nlmsghdr *h = (struct nlmsghdr *)buffer;
    h->nlmsg_type = XFRM_MSG_UPDPOLICY;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct xfrm_userpolicy_info));
    struct xfrm_userpolicy_info *info = NLMSG_DATA(h);
    fill_selector(&info->sel, sel);
    info->lft.soft_byte_limit = XFRM_INF;
    info->lft.hard_byte_limit = XFRM_INF;
    info->lft.soft_packet_limit = XFRM_INF;
    info->lft.hard_packet_limit = XFRM_INF;
    info->priority = priority;
    info->dir = XFRM_POLICY_OUT;
    info->action = XFRM_POLICY_ALLOW; /* with a template: protect; without: bypass */
    info->share = XFRM_SHARE_ANY;
    if (trap) {
        struct rtattr *attribute = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
        attribute->rta_type = XFRMA_TMPL;
        attribute->rta_len = RTA_LENGTH(sizeof(struct xfrm_user_tmpl));
        struct xfrm_user_tmpl *tmpl = RTA_DATA(attribute);
        tmpl->family = af_of(sel->family);
        tmpl->id.proto = IPPROTO_ESP;
        tmpl->mode = XFRM_MODE_TUNNEL;
        tmpl->reqid = reqid;
        tmpl->aalgos = tmpl->ealgos = tmpl->calgos = ~0u;
        h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + attribute->rta_len;
    }
    return transact(fd, h);
}

int ted_xfrm_delete_policy(int fd, const ted_selector *sel) {
    char buffer[NLMSG_SPACE(sizeof(struct xfrm_userpolicy_id))];
    memset(buffer, 0, sizeof buffer);
    struct nlmsghdr *h = (struct nlmsghdr *)buffer;
    h->nlmsg_type = XFRM_MSG_DELPOLICY;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct xfrm_userpolicy_id));
    struct xfrm_userpolicy_id *id = NLMSG_DATA(h);
    fill_selector(&id->sel, sel);
    id->dir = XFRM_POLICY_OUT;
    return transact(fd, h);
}

int ted_xfrm_dump_policies(int fd, uint32_t low, uint32_t high, ted_selector *out, int max) {
    char request[NLMSG_SPACE(0)];
    memset(request, 0, sizeof request);
    struct nlmsghdr *h = (struct nlmsghdr *)request;
    h->nlmsg_type = XFRM_MSG_GETPOLICY;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    h->nlmsg_len = NLMSG_LENGTH(0);
    h->nlmsg_seq = 0x7ed;
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, h, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) return -errno;
    char buffer[TED_NLMSG_MAX * 4];
    int found = 0;
    for (int rounds = 0; rounds < 100000; rounds++) {
        ssize_t n = recv(fd, buffer, sizeof buffer, 0);
        if (n < 0) return -errno;
        for (struct nlmsghdr *m = (struct nlmsghdr *)buffer; NLMSG_OK(m, (size_t)n); m = NLMSG_NEXT(m, n)) {
            if (m->nlmsg_type == NLMSG_DONE) return found;
            if (m->nlmsg_type == NLMSG_ERROR) return ((struct nlmsgerr *)NLMSG_DATA(m))->error;
            if (m->nlmsg_type != XFRM_MSG_NEWPOLICY) continue;
            struct xfrm_userpolicy_info *info = NLMSG_DATA(m);
            if (info->dir != XFRM_POLICY_OUT || info->priority < low || info->priority > high) continue;
            if (found < max) read_selector(&out[found], &info->sel);
            found++;
        }
    }
    return found;
}

int ted_xfrm_receive_acquire(int fd, ted_selector *sel) {
    char buffer[TED_NLMSG_MAX];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
        if (h->nlmsg_type != XFRM_MSG_ACQUIRE || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct xfrm_user_acquire))) continue;
        struct xfrm_user_acquire *acquire = NLMSG_DATA(h);
        read_selector(sel, &acquire->sel);
        return 1;
    }
    return 0;
}

int ted_send_transparent(uint8_t family, const uint8_t *src, uint16_t sport,
                         const uint8_t *dst, uint16_t dport, const void *data, size_t length) {
    return ted_send_transparent_ex(family, src, sport, dst, dport, data, length, 0, 0, 0);
}

int ted_send_transparent_ex(uint8_t family, const uint8_t *src, uint16_t sport,
                            const uint8_t *dst, uint16_t dport, const void *data, size_t length,
                            int ttl, uint32_t mark, int exact_port) {
    int fd = socket(af_of(family), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1, result = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) { result = -errno; goto done; }
    struct xfrm_userpolicy_info bypass;
    memset(&bypass, 0, sizeof bypass);
    bypass.sel.family = af_of(family);
    bypass.lft.soft_byte_limit = bypass.lft.hard_byte_limit = XFRM_INF;
    bypass.lft.soft_packet_limit = bypass.lft.hard_packet_limit = XFRM_INF;
    bypass.dir = XFRM_POLICY_OUT;
    bypass.action = XFRM_POLICY_ALLOW;
    if (family == 6) {
        if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one) < 0) { result = -errno; goto done; }
        setsockopt(fd, SOL_IPV6, IPV6_XFRM_POLICY, &bypass, sizeof bypass);
        if (ttl > 0 && setsockopt(fd, SOL_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl) < 0) { result = -errno; goto done; }
        struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(sport) };
        memcpy(&local.sin6_addr, src, 16);
        if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
            /* The port is taken (an IKE daemon holds the wildcard :500): keep P's address, any port. */
            local.sin6_port = 0;
            if (exact_port || errno != EADDRINUSE || bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { result = -errno; goto done; }
        }
        struct sockaddr_in6 remote = { .sin6_family = AF_INET6, .sin6_port = htons(dport) };
        memcpy(&remote.sin6_addr, dst, 16);
        if (sendto(fd, data, length, 0, (struct sockaddr *)&remote, sizeof remote) < 0) result = -errno;
    } else {
        if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0) { result = -errno; goto done; }
        setsockopt(fd, SOL_IP, IP_XFRM_POLICY, &bypass, sizeof bypass);
        if (ttl > 0 && setsockopt(fd, SOL_IP, IP_TTL, &ttl, sizeof ttl) < 0) { result = -errno; goto done; }
        struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(sport) };
        memcpy(&local.sin_addr, src, 4);
        if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) {
            /* The port is taken (an IKE daemon holds the wildcard :500): keep P's address, any port. */
            local.sin_port = 0;
            if (exact_port || errno != EADDRINUSE || bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { result = -errno; goto done; }
        }
        struct sockaddr_in remote = { .sin_family = AF_INET, .sin_port = htons(dport) };
        memcpy(&remote.sin_addr, dst, 4);
        if (sendto(fd, data, length, 0, (struct sockaddr *)&remote, sizeof remote) < 0) result = -errno;
    }
done:
    close(fd);
    return result;
}

int ted_transparent_listener(uint8_t family, uint16_t port, int receive_timeout_ms) {
    int fd = socket(af_of(family), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    struct timeval tv = { .tv_sec = receive_timeout_ms / 1000, .tv_usec = (receive_timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    int status;
    if (family == 6) {
        setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_IPV6, IPV6_RECVORIGDSTADDR, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) < 0) { int e = errno; close(fd); return -e; }
        struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT };
        status = bind(fd, (struct sockaddr *)&local, sizeof local);
    } else {
        if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_IP, IP_RECVORIGDSTADDR, &one, sizeof one) < 0 ||
            setsockopt(fd, SOL_IP, IP_RECVTTL, &one, sizeof one) < 0) { int e = errno; close(fd); return -e; }
        struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr = { INADDR_ANY } };
        status = bind(fd, (struct sockaddr *)&local, sizeof local);
    }
    if (status < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

int ted_receive_with_original_destination(int fd, void *buffer, size_t capacity,
                                          uint8_t *source, uint16_t *source_port,
                                          uint8_t *destination, uint16_t *destination_port, int *ttl,
                                          uint32_t *overflows) {
    struct sockaddr_storage from;
    char control[256];
    struct iovec io = { .iov_base = buffer, .iov_len = capacity };
    struct msghdr message = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &io, .msg_iovlen = 1,
                              .msg_control = control, .msg_controllen = sizeof control };
    ssize_t n = recvmsg(fd, &message, 0);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -errno;
    if (from.ss_family == AF_INET6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&from;
        memcpy(source, &s->sin6_addr, 16);
        *source_port = ntohs(s->sin6_port);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&from;
        memcpy(source, &s->sin_addr, 4);
        *source_port = ntohs(s->sin_port);
    }
    *destination_port = 0;
    *ttl = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            memcpy(overflows, CMSG_DATA(c), sizeof *overflows);
            continue;
        }
        if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_TTL) || (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
            memcpy(ttl, CMSG_DATA(c), sizeof *ttl);
            continue;
        }
        if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_ORIGDSTADDR) {
            struct sockaddr_in *d = (struct sockaddr_in *)CMSG_DATA(c);
            memcpy(destination, &d->sin_addr, 4);
            *destination_port = ntohs(d->sin_port);
        } else if (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_ORIGDSTADDR) {
            struct sockaddr_in6 *d = (struct sockaddr_in6 *)CMSG_DATA(c);
            memcpy(destination, &d->sin6_addr, 16);
            *destination_port = ntohs(d->sin6_port);
        }
    }
    return (int)n;
}

int ted_kernel_has_esp(void) {
    int fd = ted_xfrm_open(0, 1000);
    if (fd < 0) return fd;
    char buffer[NLMSG_SPACE(sizeof(struct xfrm_usersa_info)) + RTA_SPACE(sizeof(struct xfrm_algo) + 16)];
    memset(buffer, 0, sizeof buffer);
    struct nlmsghdr *h = (struct nlmsghdr *)buffer;
    h->nlmsg_type = XFRM_MSG_NEWSA;
    h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    h->nlmsg_len = NLMSG_LENGTH(sizeof(struct xfrm_usersa_info));
    struct xfrm_usersa_info *sa = NLMSG_DATA(h);
    sa->family = AF_INET;
    sa->id.proto = IPPROTO_ESP;
    sa->id.spi = htonl(0x7ed00001);
    /* 192.0.2.0/24 is documentation space; the state is deleted at once and never used. */
    sa->id.daddr.a4 = htonl(0xC0000201);
    sa->saddr.a4 = htonl(0xC0000202);
    sa->mode = XFRM_MODE_TRANSPORT;
    sa->lft.soft_byte_limit = sa->lft.hard_byte_limit = XFRM_INF;
    sa->lft.soft_packet_limit = sa->lft.hard_packet_limit = XFRM_INF;
    struct rtattr *attribute = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
    attribute->rta_type = XFRMA_ALG_CRYPT;
    attribute->rta_len = RTA_LENGTH(sizeof(struct xfrm_algo) + 16);
    struct xfrm_algo *algo = RTA_DATA(attribute);
    strcpy(algo->alg_name, "cbc(aes)");
    algo->alg_key_len = 128;
    h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + attribute->rta_len;
    int added = transact(fd, h);
    if (added == 0) {
        char del[NLMSG_SPACE(sizeof(struct xfrm_usersa_id))];
        memset(del, 0, sizeof del);
        struct nlmsghdr *d = (struct nlmsghdr *)del;
        d->nlmsg_type = XFRM_MSG_DELSA;
        d->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        d->nlmsg_len = NLMSG_LENGTH(sizeof(struct xfrm_usersa_id));
        struct xfrm_usersa_id *id = NLMSG_DATA(d);
        id->daddr.a4 = htonl(0xC0000201);
        id->spi = htonl(0x7ed00001);
        id->family = AF_INET;
        id->proto = IPPROTO_ESP;
        transact(fd, d);
    }
    close(fd);
    return added == 0 ? 1 : 0;
}

int ted_udp_bind(uint8_t family, const uint8_t *address, uint16_t port, int buffer, int receive_timeout_ms) {
    int fd = socket(af_of(family), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (buffer > 0) {
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof buffer) < 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    }
    struct timeval timeout = { .tv_sec = receive_timeout_ms / 1000, .tv_usec = (receive_timeout_ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    /* Each read then says how many datagrams the kernel dropped for a full receive buffer. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
    int status;
    if (family == 6) {
        int zero = 0;
        setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
        memcpy(&local.sin6_addr, address, 16);
        status = bind(fd, (struct sockaddr *)&local, sizeof local);
    } else {
        struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(port) };
        memcpy(&local.sin_addr, address, 4);
        status = bind(fd, (struct sockaddr *)&local, sizeof local);
    }
    if (status < 0) { int e = errno; close(fd); return -e; }
    return fd;
}

void ted_name_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    prctl(PR_SET_NAME, truncated, 0, 0, 0);
}

int ted_local_port(int fd) {
    struct sockaddr_storage local;
    socklen_t length = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &length) < 0) return -errno;
    if (local.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&local)->sin6_port);
    if (local.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&local)->sin_port);
    return -EAFNOSUPPORT;
}

int ted_send_datagrams(int fd, uint8_t socket_family, const ted_datagram *datagrams, int count, int *errors) {
    enum { batch = 64 };
    if (count > batch) count = batch;
    struct mmsghdr messages[batch];
    struct iovec vectors[batch];
    struct sockaddr_storage addresses[batch];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        const ted_datagram *d = &datagrams[i];
        errors[i] = 0;
        vectors[i].iov_base = (void *)d->data;
        vectors[i].iov_len = d->length;
        memset(&addresses[i], 0, sizeof addresses[i]);
        socklen_t length;
        if (socket_family == 6) {
            struct sockaddr_in6 *to = (struct sockaddr_in6 *)&addresses[i];
            to->sin6_family = AF_INET6;
            to->sin6_port = htons(d->port);
            if (d->family == 4) {   /* IPv4-mapped on a dual-stack socket */
                to->sin6_addr.s6_addr[10] = 0xff;
                to->sin6_addr.s6_addr[11] = 0xff;
                memcpy(&to->sin6_addr.s6_addr[12], d->address, 4);
            } else {
                memcpy(&to->sin6_addr, d->address, 16);
            }
            length = sizeof *to;
        } else {
            struct sockaddr_in *to = (struct sockaddr_in *)&addresses[i];
            to->sin_family = AF_INET;
            to->sin_port = htons(d->port);
            memcpy(&to->sin_addr, d->address, 4);
            length = sizeof *to;
        }
        messages[i].msg_hdr.msg_name = &addresses[i];
        messages[i].msg_hdr.msg_namelen = length;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
    }
    int sent = 0, next = 0;
    while (next < count) {
        int n = sendmmsg(fd, &messages[next], (unsigned)(count - next), MSG_DONTWAIT);
        if (n > 0) { sent += n; next += n; continue; }
        int e = n < 0 ? errno : EIO;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            /* The socket buffer is full: drop the rest rather than queue them. */
            for (; next < count; next++) errors[next] = e;
            break;
        }
        errors[next++] = e;   /* this datagram failed; the next ones still go */
    }
    return sent;
}

int ted_receive_datagrams(int fd, uint8_t *storage, size_t slot_size, ted_datagram *datagrams, int count,
                          uint32_t *overflows) {
    enum { batch = 64 };
    if (count > batch) count = batch;
    if (count <= 0) return 0;
    struct mmsghdr messages[batch];
    struct iovec vectors[batch];
    struct sockaddr_storage addresses[batch];
    union { char bytes[CMSG_SPACE(sizeof(uint32_t))]; struct cmsghdr align; } controls[batch];
    memset(messages, 0, sizeof(struct mmsghdr) * (size_t)count);
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = storage + (size_t)i * slot_size;
        vectors[i].iov_len = slot_size;
        messages[i].msg_hdr.msg_name = &addresses[i];
        messages[i].msg_hdr.msg_namelen = sizeof addresses[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_control = controls[i].bytes;
        messages[i].msg_hdr.msg_controllen = sizeof controls[i].bytes;
    }
    int n;
    do {
        n = recvmmsg(fd, messages, (unsigned)count, MSG_WAITFORONE, NULL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&messages[i].msg_hdr); c; c = CMSG_NXTHDR(&messages[i].msg_hdr, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) memcpy(overflows, CMSG_DATA(c), sizeof *overflows);
        }
        ted_datagram *d = &datagrams[i];
        memset(d, 0, sizeof *d);
        d->data = vectors[i].iov_base;
        d->length = messages[i].msg_len;
        socklen_t named = messages[i].msg_hdr.msg_namelen;   /* 0 after a shutdown */
        if (named >= sizeof(struct sockaddr_in6) && addresses[i].ss_family == AF_INET6) {
            const struct sockaddr_in6 *from = (const struct sockaddr_in6 *)&addresses[i];
            const uint8_t *a = from->sin6_addr.s6_addr;
            static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
            if (memcmp(a, mapped, 12) == 0) {
                d->family = 4;
                memcpy(d->address, a + 12, 4);
            } else {
                d->family = 6;
                memcpy(d->address, a, 16);
            }
            d->port = ntohs(from->sin6_port);
        } else if (named >= sizeof(struct sockaddr_in) && addresses[i].ss_family == AF_INET) {
            const struct sockaddr_in *from = (const struct sockaddr_in *)&addresses[i];
            d->family = 4;
            memcpy(d->address, &from->sin_addr, 4);
            d->port = ntohs(from->sin_port);
        }   /* else family 0: no address (the caller drops it) */
    }
    return n;
}
