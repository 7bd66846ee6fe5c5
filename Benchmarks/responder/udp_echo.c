/* The baseline of Benchmarks/responder.sh: a UDP echo on 127.0.0.1, one recvfrom and
 * one sendto per datagram, nothing else. With a third argument `mmsg` it reads and
 * writes up to 64 datagrams per call (recvmmsg/sendmmsg): a faster server, to show the
 * load generator's own ceiling above the plain echo's. It stops after SECONDS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strcmp(argv[3], "mmsg") == 0)) {
        fprintf(stderr, "usage: %s PORT SECONDS [mmsg]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double limit = atof(argv[2]);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int size = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    struct timeval timeout = {0, 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((unsigned short)port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) { perror("bind"); return 1; }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    unsigned char buffer[4352];
    unsigned long echoed = 0;
    if (argc == 4) {
        static unsigned char buffers[64][4352];
        static struct sockaddr_in peers[64];
        struct iovec iov[64];
        struct mmsghdr msgs[64];
        for (;;) {
            memset(msgs, 0, sizeof msgs);
            for (int i = 0; i < 64; i++) {
                iov[i].iov_base = buffers[i];
                iov[i].iov_len = sizeof buffers[i];
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_name = &peers[i];
                msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
            }
            /* Blocks for the first datagram (or the timeout), then takes what is queued. */
            int n = recvmmsg(fd, msgs, 64, MSG_WAITFORONE, NULL);
            if (n > 0) {
                for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
                int sent = sendmmsg(fd, msgs, (unsigned)n, 0);
                if (sent > 0) echoed += (unsigned long)sent;
            }
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 > limit) break;
        }
        fprintf(stderr, "udp_echo: %lu datagrams echoed\n", echoed);
        return 0;
    }
    for (;;) {
        struct sockaddr_in peer;
        socklen_t length = sizeof peer;
        ssize_t n = recvfrom(fd, buffer, sizeof buffer, 0, (struct sockaddr *)&peer, &length);
        if (n >= 0) {
            if (sendto(fd, buffer, (size_t)n, 0, (struct sockaddr *)&peer, length) == n) echoed++;
        }
        /* Checked every 1024 datagrams and on every idle timeout, to stay out of the hot path. */
        if (n < 0 || (echoed & 1023) == 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            if ((double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9 > limit) break;
        }
    }
    fprintf(stderr, "udp_echo: %lu datagrams echoed\n", echoed);
    return 0;
}
