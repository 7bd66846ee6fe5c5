/* The load generator of Benchmarks/responder.sh: real TED probes to 127.0.0.1:PORT from a
 * socket bound to 127.0.0.1:BIND (the port in the probes' identity payload, where a
 * responder answers), each reply matched to its probe by the initiator cookie (bytes 0-7,
 * echoed by a TED response and by an echo server alike).
 *
 *   closed loop:  ted_load PORT BIND PROBES SECONDS window N   (N probes in flight)
 *   open loop:    ted_load PORT BIND PROBES SECONDS rate R     (R probes/s, paced)
 *
 * PROBES holds datagrams as a 2-byte big-endian length then the bytes (`ted-bench probes`
 * writes it from the codec); their cookies are overwritten here. One thread, batched
 * recvmmsg/sendmmsg, so that the generator costs less per datagram than a server doing
 * recvfrom/sendto: its own ceiling is shown by the run against the C echo. The first
 * WARMUP seconds are not counted. Prints one line of key=value; generator_cpu is the CPU
 * time it used over the wall time: in the closed loop it sleeps in poll() while waiting,
 * so well under 1 means the server, not the generator, set the rate. answered_total counts
 * the warm-up's answers too (closed loop). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_DATAGRAM 4352
#define HISTOGRAM_US 200000 /* 1 us buckets up to 200 ms */
#define WARMUP 0.5
#define LOST_AFTER_NS 200000000ull /* a closed-loop probe unanswered this long is lost and replaced */

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static unsigned char *probes[65536];
static size_t probe_length[65536];
static size_t probe_count;
static uint32_t histogram[HISTOGRAM_US + 1];
static uint64_t histogram_total;

static void record(uint64_t ns) {
    uint64_t us = ns / 1000;
    histogram[us > HISTOGRAM_US ? HISTOGRAM_US : us]++;
    histogram_total++;
}

static double percentile(double p) {
    if (histogram_total == 0) return -1;
    uint64_t rank = (uint64_t)(p * (double)histogram_total), seen = 0;
    for (int us = 0; us <= HISTOGRAM_US; us++) {
        seen += histogram[us];
        if (seen > rank) return us + 0.5;
    }
    return HISTOGRAM_US;
}

static void load_probes(const char *path) {
    FILE *file = fopen(path, "rb");
    if (!file) { perror(path); exit(1); }
    unsigned char header[2];
    while (probe_count < 65536 && fread(header, 1, 2, file) == 2) {
        size_t length = (size_t)header[0] << 8 | header[1];
        if (length < 28 || length > MAX_DATAGRAM) { fprintf(stderr, "bad probe length %zu\n", length); exit(1); }
        probes[probe_count] = malloc(length);
        if (fread(probes[probe_count], 1, length, file) != length) { fprintf(stderr, "truncated %s\n", path); exit(1); }
        probe_length[probe_count++] = length;
    }
    fclose(file);
    if (probe_count == 0) { fprintf(stderr, "no probe in %s\n", path); exit(1); }
}

static void put_cookie(unsigned char *bytes, uint64_t cookie) {
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(cookie >> (56 - 8 * i));
}

static uint64_t get_cookie(const unsigned char *bytes) {
    uint64_t cookie = 0;
    for (int i = 0; i < 8; i++) cookie = cookie << 8 | bytes[i];
    return cookie;
}

/* Outgoing batch: each message its own copy of a probe with its cookie. */
static unsigned char out_buffers[BATCH][MAX_DATAGRAM];
static struct iovec out_iov[BATCH];
static struct mmsghdr out_msgs[BATCH];
static int out_count;
static struct sockaddr_in target;
static int fd;
static uint64_t sent, send_failed;

static void flush_out(void) {
    int done = 0;
    while (done < out_count) {
        int n = sendmmsg(fd, out_msgs + done, (unsigned)(out_count - done), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            send_failed += (uint64_t)(out_count - done); /* ENOBUFS/EAGAIN: counted, never retried */
            break;
        }
        done += n;
        sent += (uint64_t)n;
    }
    out_count = 0;
}

static size_t next_probe;

static void queue(uint64_t cookie) {
    size_t index = next_probe++ % probe_count;
    memcpy(out_buffers[out_count], probes[index], probe_length[index]);
    put_cookie(out_buffers[out_count], cookie);
    out_iov[out_count].iov_len = probe_length[index];
    out_count++;
    if (out_count == BATCH) flush_out();
}

int main(int argc, char **argv) {
    if (argc != 7 || (strcmp(argv[5], "window") && strcmp(argv[5], "rate"))) {
        fprintf(stderr, "usage: %s PORT BIND PROBES SECONDS window N | rate R\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]), bind_port = atoi(argv[2]);
    double seconds = atof(argv[4]);
    int closed = strcmp(argv[5], "window") == 0;
    double parameter = atof(argv[6]);
    if (seconds <= WARMUP || seconds > 600 || parameter < 1 || (closed && parameter > 65535) || parameter > 1e8) {
        fprintf(stderr, "seconds in (%.1f, 600], window in [1, 65535], rate in [1, 1e8]\n", WARMUP);
        return 2;
    }
    load_probes(argv[3]);

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct sockaddr_in local = {0};
    local.sin_family = AF_INET;
    local.sin_port = htons((unsigned short)bind_port);
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) { perror("bind"); return 1; }
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)port);
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* Connected: replies from anywhere else are not read, and sendmmsg needs no address. */
    if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0) { perror("connect"); return 1; }
    for (int i = 0; i < BATCH; i++) {
        out_iov[i].iov_base = out_buffers[i];
        out_msgs[i].msg_hdr.msg_iov = &out_iov[i];
        out_msgs[i].msg_hdr.msg_iovlen = 1;
    }
    static unsigned char in_buffers[BATCH][MAX_DATAGRAM];
    struct iovec in_iov[BATCH];
    struct mmsghdr in_msgs[BATCH];
    memset(in_msgs, 0, sizeof in_msgs);
    for (int i = 0; i < BATCH; i++) {
        in_iov[i].iov_base = in_buffers[i];
        in_iov[i].iov_len = MAX_DATAGRAM;
        in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
        in_msgs[i].msg_hdr.msg_iovlen = 1;
    }

    uint64_t start = now_ns(), warm = start + (uint64_t)(WARMUP * 1e9), end = start + (uint64_t)(seconds * 1e9);
    uint64_t answered = 0, answered_warm = 0, lost = 0, unmatched = 0, not_response = 0;
    uint64_t sent_warm = 0;
    int counting = 0;

    /* closed loop: slot i has generation gen[i]; its cookie is gen << 16 | i (never zero). */
    size_t window = closed ? (size_t)parameter : 0;
    uint32_t *gen = calloc(window + 1, sizeof *gen);
    uint64_t *slot_sent = calloc(window + 1, sizeof *slot_sent);
    /* open loop: cookie = sequence number + 1, its send time kept. */
    uint64_t capacity = closed ? 1 : (uint64_t)(parameter * seconds * 1.05) + BATCH;
    uint64_t *send_time = calloc(capacity, sizeof *send_time);
    uint64_t sequence = 0;
    if (!gen || !slot_sent || !send_time) { fprintf(stderr, "out of memory\n"); return 1; }

    if (closed) {
        uint64_t t = now_ns();
        for (size_t i = 0; i < window; i++) {
            gen[i] = 1;
            slot_sent[i] = t;
            queue((uint64_t)gen[i] << 16 | i);
        }
        flush_out();
    }
    uint64_t last_sweep = start;
    int expected = 241;
    const char *expect = getenv("TED_LOAD_EXPECT");
    if (expect) expected = atoi(expect);

    for (;;) {
        uint64_t t = now_ns();
        if (!counting && t >= warm) {
            counting = 1;
            answered_warm = answered;
            sent_warm = sent;
            memset(histogram, 0, sizeof histogram);
            histogram_total = 0;
        }
        if (t >= end) break;
        if (!closed) {
            uint64_t due = (uint64_t)((double)(t - start) * parameter / 1e9);
            if (due > capacity - BATCH) due = capacity - BATCH;
            while (sequence < due && out_count < BATCH) {
                send_time[sequence] = t;
                queue(++sequence);
            }
            flush_out();
        }
        int n = recvmmsg(fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (closed) {
                struct pollfd p = {fd, POLLIN, 0};
                poll(&p, 1, 10);
            }
            n = 0;
        }
        uint64_t received_at = now_ns();
        for (int k = 0; k < n; k++) {
            const unsigned char *bytes = in_buffers[k];
            if (in_msgs[k].msg_len < 28) { unmatched++; continue; }
            if (bytes[18] != expected) { not_response++; continue; }
            uint64_t cookie = get_cookie(bytes);
            if (closed) {
                size_t slot = cookie & 0xffff;
                if (slot >= window || gen[slot] != (uint32_t)(cookie >> 16)) { unmatched++; continue; }
                record(received_at - slot_sent[slot]);
                answered++;
                gen[slot] = gen[slot] == 0xffffffffu ? 1 : gen[slot] + 1;
                slot_sent[slot] = received_at;
                queue((uint64_t)gen[slot] << 16 | slot);
            } else {
                if (cookie == 0 || cookie > sequence || send_time[cookie - 1] == 0) { unmatched++; continue; }
                record(received_at - send_time[cookie - 1]);
                send_time[cookie - 1] = 0;
                answered++;
            }
        }
        if (closed) {
            flush_out();
            if (received_at - last_sweep > 20000000ull) {
                last_sweep = received_at;
                for (size_t i = 0; i < window; i++) {
                    if (received_at - slot_sent[i] > LOST_AFTER_NS) {
                        lost++;
                        gen[i] = gen[i] == 0xffffffffu ? 1 : gen[i] + 1;
                        slot_sent[i] = received_at;
                        queue((uint64_t)gen[i] << 16 | i);
                    }
                }
                flush_out();
            }
        }
    }
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    double cpu = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec / 1e6 + (double)usage.ru_stime.tv_sec +
                 (double)usage.ru_stime.tv_usec / 1e6;
    double busy = cpu / ((double)(now_ns() - start) / 1e9);
    double counted = seconds - WARMUP;
    uint64_t answered_counted = answered - answered_warm;
    uint64_t sent_counted = sent - sent_warm;
    if (!closed) {
        /* Late answers to probes sent in the counted time: waited for 200 ms more. */
        uint64_t drain_end = now_ns() + 200000000ull;
        while (now_ns() < drain_end) {
            int n = recvmmsg(fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
            uint64_t received_at = now_ns();
            for (int k = 0; k < n; k++) {
                const unsigned char *bytes = in_buffers[k];
                if (in_msgs[k].msg_len < 28 || bytes[18] != expected) continue;
                uint64_t cookie = get_cookie(bytes);
                if (cookie == 0 || cookie > sequence || send_time[cookie - 1] == 0) continue;
                record(received_at - send_time[cookie - 1]);
                send_time[cookie - 1] = 0;
                answered_counted++;
            }
        }
        lost = sent_counted > answered_counted ? sent_counted - answered_counted : 0;
    }
    printf("mode=%s param=%.0f probes=%zu seconds=%.2f sent=%llu answered=%llu answers_per_s=%.0f "
           "p50_us=%.1f p99_us=%.1f p999_us=%.1f lost=%llu unmatched=%llu not_response=%llu send_failed=%llu generator_cpu=%.2f answered_total=%llu\n",
           closed ? "window" : "rate", parameter, probe_count, counted, (unsigned long long)sent_counted,
           (unsigned long long)answered_counted, (double)answered_counted / counted, percentile(0.5),
           percentile(0.99), percentile(0.999), (unsigned long long)lost, (unsigned long long)unmatched,
           (unsigned long long)not_response, (unsigned long long)send_failed, busy, (unsigned long long)answered);
    return 0;
}
