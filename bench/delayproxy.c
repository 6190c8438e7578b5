/* delayproxy.c: bench/delayproxy.py's job in C, for runs with hundreds of connections.
 *
 * Same behaviour: listen on 127.0.0.1, connect each accepted client to the target, and pass
 * every chunk read on to the other side one_way_us (+ up to jitter_us) later, in order (a
 * chunk is never released before the one read before it), the end of stream likewise.
 * One thread, one epoll loop, one heap of release times. bench/arena.py builds it with cc
 * when it can and falls back to the Python proxy otherwise.
 *
 *   cc -O2 -o delayproxy bench/delayproxy.c
 *   ./delayproxy PORT_FILE TARGET_HOST TARGET_PORT ONE_WAY_US JITTER_US SEED
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)
#define MAX_QUEUED (8 * 1024 * 1024)

typedef struct chunk {
    struct chunk *next;
    int64_t release;
    size_t len, off; /* len 0: the end of stream */
    char data[];
} chunk;

struct pair;
typedef struct dir {
    int src, dst;
    chunk *head, *tail; /* read, not yet fully written, in release order */
    size_t queued;
    int64_t last_release;
    int reading, src_eof, eof_sent;
    int blocked; /* the destination took only part of a due chunk: wait until it is writable */
    int unwatched; /* the source is shut both ways: out of the epoll set (its queue still goes out) */
    struct dir *peer;
    struct pair *pair;
} dir;

typedef struct pair {
    dir up, down;
    int dead;
} pair;

typedef struct { int64_t t; uint64_t order; dir *d; } entry;

static entry *heap;
static size_t heap_n, heap_cap;
static uint64_t order_n;
static int ep;
static volatile sig_atomic_t stopping;
static int64_t one_way, jitter;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int less(const entry *a, const entry *b) { return a->t < b->t || (a->t == b->t && a->order < b->order); }

static void swap(size_t i, size_t j) { entry x = heap[i]; heap[i] = heap[j]; heap[j] = x; }

static void heap_push(int64_t t, dir *d) {
    if (heap_n == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 4096;
        heap = realloc(heap, heap_cap * sizeof *heap);
        if (!heap) abort();
    }
    size_t i = heap_n++;
    heap[i] = (entry){t, order_n++, d};
    while (i && less(&heap[i], &heap[(i - 1) / 2])) { swap(i, (i - 1) / 2); i = (i - 1) / 2; }
}

static entry heap_pop(void) {
    entry top = heap[0];
    heap[0] = heap[--heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && less(&heap[l], &heap[m])) m = l;
        if (r < heap_n && less(&heap[r], &heap[m])) m = r;
        if (m == i) break;
        swap(i, m);
        i = m;
    }
    return top;
}

/* a socket's epoll interest: reading for the direction it is the source of, writing when
 * the direction it is the destination of has a due chunk it could not finish */
static void watch(dir *d) {
    if (d->pair->dead || d->unwatched) return;
    int want_write = d->peer->blocked;
    struct epoll_event ev = {.events = (d->reading ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0), .data.ptr = d};
    epoll_ctl(ep, EPOLL_CTL_MOD, d->src, &ev);
}

static void close_pair(pair *p) {
    if (p->dead) return;
    p->dead = 1;
    dir *ds[2] = {&p->up, &p->down};
    for (int k = 0; k < 2; k++) {
        chunk *c = ds[k]->head;
        while (c) { chunk *n = c->next; free(c); c = n; }
        ds[k]->head = ds[k]->tail = NULL;
    }
    close(p->up.src);
    close(p->down.src);
    /* the pair itself is not freed: epoll events of this batch and heap entries may still
     * name it (a bench run makes at most a few thousand, a few hundred bytes each) */
}

/* write what is due, in order; end the destination's side once the end of stream is due */
static void flush(dir *d) {
    int64_t now = now_us();
    d->blocked = 0;
    while (!d->pair->dead && d->head && d->head->release <= now) {
        chunk *c = d->head;
        if (c->len == 0) {
            shutdown(d->dst, SHUT_WR);
            d->eof_sent = 1;
            d->head = NULL;
            d->tail = NULL;
            free(c);
            if (d->peer->eof_sent) close_pair(d->pair);
            return;
        }
        ssize_t n = send(d->dst, c->data + c->off, c->len - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) { d->blocked = 1; break; }
            close_pair(d->pair);
            return;
        }
        c->off += (size_t)n;
        if (c->off < c->len) { d->blocked = 1; break; }
        d->queued -= c->len;
        d->head = c->next;
        if (!d->head) d->tail = NULL;
        free(c);
    }
    if (d->pair->dead) return;
    if (!d->reading && !d->src_eof && d->queued <= MAX_QUEUED / 2) d->reading = 1;
    watch(d);
    watch(d->peer);
}

static void on_read(dir *d) {
    chunk *c = malloc(sizeof(chunk) + CHUNK);
    if (!c) abort();
    ssize_t n = recv(d->src, c->data, CHUNK, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) { free(c); return; }
    if (n <= 0) n = 0; /* end of stream (or an error: treated as one) */
    if (n > 0 && n < CHUNK) {
        chunk *s = realloc(c, sizeof(chunk) + (size_t)n);
        if (s) c = s;
    }
    int64_t t = now_us() + one_way + (jitter ? (int64_t)(random() % (jitter + 1)) : 0);
    if (t < d->last_release) t = d->last_release;
    d->last_release = t;
    c->release = t;
    c->len = (size_t)n;
    c->off = 0;
    c->next = NULL;
    if (d->tail) d->tail->next = c; else d->head = c;
    d->tail = c;
    d->queued += (size_t)n;
    heap_push(t, d);
    if (n == 0) { d->src_eof = 1; d->reading = 0; }
    else if (d->queued > MAX_QUEUED) d->reading = 0;
    watch(d);
}

static void on_accept(int lfd, struct sockaddr_in *target) {
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c < 0) return;
        int u = socket(AF_INET, SOCK_STREAM, 0);
        if (u < 0 || connect(u, (struct sockaddr *)target, sizeof *target) < 0) {
            close(c);
            if (u >= 0) close(u);
            continue;
        }
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(u, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(u, F_SETFL, fcntl(u, F_GETFL) | O_NONBLOCK);
        pair *p = calloc(1, sizeof *p);
        if (!p) abort();
        p->up = (dir){.src = c, .dst = u, .reading = 1, .pair = p};
        p->down = (dir){.src = u, .dst = c, .reading = 1, .pair = p};
        p->up.peer = &p->down;
        p->down.peer = &p->up;
        struct epoll_event e1 = {.events = EPOLLIN, .data.ptr = &p->up};
        struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = &p->down};
        epoll_ctl(ep, EPOLL_CTL_ADD, c, &e1);
        epoll_ctl(ep, EPOLL_CTL_ADD, u, &e2);
    }
}

static void on_signal(int s) { (void)s; stopping = 1; }

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s PORT_FILE TARGET_HOST TARGET_PORT ONE_WAY_US JITTER_US SEED\n", argv[0]);
        return 2;
    }
    one_way = atoll(argv[4]);
    jitter = atoll(argv[5]);
    srandom((unsigned)atoi(argv[6]));
    struct sockaddr_in target = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
    if (inet_pton(AF_INET, argv[2], &target.sin_addr) != 1) { fprintf(stderr, "bad target host\n"); return 2; }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof addr;
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) { perror("listen"); return 1; }
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    FILE *pf = fopen(argv[1], "w");
    if (!pf) { perror("port file"); return 1; }
    fprintf(pf, "%d\n", ntohs(addr.sin_port));
    fclose(pf);

    ep = epoll_create1(0);
    struct epoll_event le = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
    struct epoll_event evs[256];
    while (!stopping) {
        int timeout = 500;
        if (heap_n) {
            int64_t wait = heap[0].t - now_us();
            timeout = wait <= 0 ? 0 : (int)((wait + 999) / 1000);
            if (timeout > 500) timeout = 500;
        }
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            dir *d = evs[i].data.ptr;
            if (!d) { on_accept(lfd, &target); continue; }
            if (d->pair->dead) continue;
            uint32_t what = evs[i].events;
            if (what & EPOLLERR) { close_pair(d->pair); continue; }
            if (what & EPOLLHUP && !d->reading) { /* read to its end and written to its end */
                epoll_ctl(ep, EPOLL_CTL_DEL, d->src, NULL);
                d->unwatched = 1;
                continue;
            }
            if (what & (EPOLLIN | EPOLLHUP) && d->reading) on_read(d);
            if (!d->pair->dead && what & EPOLLOUT) flush(d->peer);
        }
        int64_t now = now_us();
        while (heap_n && heap[0].t <= now) {
            entry e = heap_pop();
            if (e.d->pair->dead) continue;
            flush(e.d);
        }
    }
    return 0;
}
