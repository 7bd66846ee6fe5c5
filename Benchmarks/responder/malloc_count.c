/* LD_PRELOAD counter of heap allocations for Benchmarks/responder-allocations.sh: every
 * malloc, calloc, realloc, memalign, posix_memalign and aligned_alloc is counted (atomic,
 * all threads) and passed to glibc; the total is written to $MALLOC_COUNT_FILE when the
 * process exits, and on SIGUSR2 (so a count can be taken while the process runs). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong count;

void *malloc(size_t size) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_realloc(p, size); }
void *memalign(size_t alignment, size_t size) { atomic_fetch_add_explicit(&count, 1, memory_order_relaxed); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    void *p = memalign(alignment, size);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static void write_count(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (!path) return;
    /* Digits by hand: this runs in a signal handler, where snprintf is not safe. */
    char text[32];
    int length = 0;
    unsigned long value = atomic_load(&count);
    char reversed[24];
    do { reversed[length++] = (char)('0' + value % 10); value /= 10; } while (value);
    for (int i = 0; i < length; i++) text[i] = reversed[length - 1 - i];
    text[length++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    if (write(fd, text, (size_t)length) < 0) { /* nothing to do */ }
    close(fd);
}

static void on_signal(int signal) { (void)signal; write_count(); }

__attribute__((constructor)) static void start(void) { signal(SIGUSR2, on_signal); }
__attribute__((destructor)) static void stop(void) { write_count(); }
