/* lib/loop.c — the event loop (mesh/loop.h): epoll, a timer heap, hooks, signalfd. */
#include "mesh/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "mesh/err.h"

#define MAX_EVENTS 256

struct fd_entry {
    mesh_fd_cb cb;
    void *ctx;
    unsigned mask;
    uint32_t gen; /* bumped on add, so a stale event for a reused fd is dropped */
    uint8_t used;
    uint8_t in_epoll; /* mask 0 takes the fd out of epoll: no endless HUP reports */
};

enum { SLOT_FREE = -1, SLOT_FIRING = -2 };

struct timer_slot {
    uint64_t deadline_us;
    uint64_t seq; /* ties broken by arming order */
    mesh_timer_cb cb;
    void *ctx;
    uint32_t gen;
    int32_t heap_idx; /* index in loop->heap, or SLOT_FREE / SLOT_FIRING */
    int32_t next_free;
};

struct hook {
    int64_t id;
    mesh_hook_cb cb; /* NULL once deleted; compacted outside the hook phase */
    void *ctx;
};

struct mesh_loop {
    int epfd;
    int stop;
    int wake;
    struct fd_entry *fds;
    int nfds;

    struct timer_slot *slots;
    int32_t nslots, free_slot;
    int32_t *heap; /* slot indices, a binary min-heap on (deadline, seq) */
    int32_t heap_len;
    uint64_t timer_seq;
    uint64_t tick_us, tick_wall_us; /* when the current iteration woke up */

    struct hook *hooks;
    size_t nhooks, hooks_alloc;
    int64_t next_hook_id;
    int in_hooks, hooks_deleted;

    int sigfd;
    sigset_t sigs_handled, sigs_blocked_by_us;
    mesh_signal_cb sig_cb[_NSIG];
    void *sig_ctx[_NSIG];
    struct sigaction sig_old[_NSIG];  /* restored by mesh_loop_free */
};

uint64_t mesh_wall_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mesh_loop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t mesh_loop_tick_us(const struct mesh_loop *loop)
{
    return loop->tick_us;
}

uint64_t mesh_loop_tick_wall_us(const struct mesh_loop *loop)
{
    return loop->tick_wall_us;
}

struct mesh_loop *mesh_loop_new(void)
{
    struct mesh_loop *loop = calloc(1, sizeof(*loop));
    if (loop == NULL)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        free(loop);
        return NULL;
    }
    loop->free_slot = -1;
    loop->sigfd = -1;
    loop->next_hook_id = 1;
    loop->tick_us = mesh_loop_now_us();
    loop->tick_wall_us = mesh_wall_now_us();
    sigemptyset(&loop->sigs_handled);
    sigemptyset(&loop->sigs_blocked_by_us);
    return loop;
}

void mesh_loop_free(struct mesh_loop *loop)
{
    if (loop == NULL)
        return;
    if (loop->sigfd >= 0) {
        /* consume what is pending, so unblocking does not deliver it */
        struct signalfd_siginfo info;
        while (read(loop->sigfd, &info, sizeof(info)) == (ssize_t)sizeof(info))
            ;
        close(loop->sigfd);
        for (int signo = 1; signo < _NSIG; signo++)
            if (sigismember(&loop->sigs_handled, signo))
                sigaction(signo, &loop->sig_old[signo], NULL);
        sigprocmask(SIG_UNBLOCK, &loop->sigs_blocked_by_us, NULL);
    }
    close(loop->epfd);
    free(loop->fds);
    free(loop->slots);
    free(loop->heap);
    free(loop->hooks);
    free(loop);
}

/* --- fds ---------------------------------------------------------------------------------- */

static int epoll_apply(struct mesh_loop *loop, int fd, struct fd_entry *fe, unsigned mask)
{
    struct epoll_event ev = {0};
    ev.events = ((mask & MESH_READ) ? EPOLLIN : 0u) | ((mask & MESH_WRITE) ? EPOLLOUT : 0u);
    ev.data.u64 = (uint64_t)fe->gen << 32 | (uint32_t)fd;
    int rv = 0;
    if (mask == 0 && fe->in_epoll)
        rv = epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    else if (mask != 0)
        rv = epoll_ctl(loop->epfd, fe->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
    if (rv != 0)
        return MESH_EIO;
    fe->in_epoll = mask != 0;
    fe->mask = mask;
    return 0;
}

int mesh_loop_add_fd(struct mesh_loop *loop, int fd, unsigned mask, mesh_fd_cb cb, void *ctx)
{
    if (fd < 0 || cb == NULL)
        return MESH_EINVAL;
    if (fd >= loop->nfds) {
        int n = loop->nfds ? loop->nfds : 64;
        while (n <= fd)
            n *= 2;
        struct fd_entry *fds = realloc(loop->fds, (size_t)n * sizeof(*fds));
        if (fds == NULL)
            return MESH_ENOMEM;
        memset(fds + loop->nfds, 0, (size_t)(n - loop->nfds) * sizeof(*fds));
        loop->fds = fds;
        loop->nfds = n;
    }
    struct fd_entry *fe = &loop->fds[fd];
    if (fe->used)
        return MESH_EINVAL;
    fe->gen++;
    fe->in_epoll = 0;
    int rv = epoll_apply(loop, fd, fe, mask);
    if (rv != 0)
        return rv;
    fe->used = 1;
    fe->cb = cb;
    fe->ctx = ctx;
    return 0;
}

int mesh_loop_mod_fd(struct mesh_loop *loop, int fd, unsigned mask)
{
    if (fd < 0 || fd >= loop->nfds || !loop->fds[fd].used)
        return MESH_EINVAL;
    struct fd_entry *fe = &loop->fds[fd];
    return fe->mask == mask ? 0 : epoll_apply(loop, fd, fe, mask);
}

void mesh_loop_del_fd(struct mesh_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->nfds || !loop->fds[fd].used)
        return;
    struct fd_entry *fe = &loop->fds[fd];
    if (fe->in_epoll)
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    fe->used = fe->in_epoll = 0;
    fe->mask = 0;
    fe->cb = NULL;
    fe->gen++; /* events already fetched for it are now stale */
}

/* --- timers ------------------------------------------------------------------------------- */

static int timer_less(const struct mesh_loop *loop, int32_t a, int32_t b)
{
    const struct timer_slot *ta = &loop->slots[a], *tb = &loop->slots[b];
    return ta->deadline_us < tb->deadline_us ||
           (ta->deadline_us == tb->deadline_us && ta->seq < tb->seq);
}

static void heap_set(struct mesh_loop *loop, int32_t idx, int32_t slot)
{
    loop->heap[idx] = slot;
    loop->slots[slot].heap_idx = idx;
}

static void heap_up(struct mesh_loop *loop, int32_t idx)
{
    int32_t slot = loop->heap[idx];
    while (idx > 0) {
        int32_t parent = (idx - 1) / 2;
        if (!timer_less(loop, slot, loop->heap[parent]))
            break;
        heap_set(loop, idx, loop->heap[parent]);
        idx = parent;
    }
    heap_set(loop, idx, slot);
}

static void heap_down(struct mesh_loop *loop, int32_t idx)
{
    int32_t slot = loop->heap[idx];
    for (;;) {
        int32_t child = 2 * idx + 1;
        if (child >= loop->heap_len)
            break;
        if (child + 1 < loop->heap_len &&
            timer_less(loop, loop->heap[child + 1], loop->heap[child]))
            child++;
        if (!timer_less(loop, loop->heap[child], slot))
            break;
        heap_set(loop, idx, loop->heap[child]);
        idx = child;
    }
    heap_set(loop, idx, slot);
}

static void heap_remove(struct mesh_loop *loop, int32_t idx)
{
    int32_t last = loop->heap[--loop->heap_len];
    if (idx == loop->heap_len)
        return;
    heap_set(loop, idx, last);
    heap_down(loop, idx);
    heap_up(loop, loop->slots[last].heap_idx);
}

static void heap_insert(struct mesh_loop *loop, int32_t slot, uint64_t ms)
{
    struct timer_slot *ts = &loop->slots[slot];
    ts->deadline_us = mesh_loop_now_us() + ms * 1000u;
    ts->seq = loop->timer_seq++;
    loop->heap[loop->heap_len] = slot;
    heap_up(loop, loop->heap_len++);
}

static void slot_release(struct mesh_loop *loop, int32_t slot)
{
    struct timer_slot *ts = &loop->slots[slot];
    ts->gen = (ts->gen + 1) & 0x7fffffffu;
    ts->heap_idx = SLOT_FREE;
    ts->cb = NULL;
    ts->next_free = loop->free_slot;
    loop->free_slot = slot;
}

int64_t mesh_loop_add_timer(struct mesh_loop *loop, uint64_t ms, mesh_timer_cb cb, void *ctx)
{
    if (loop->free_slot < 0) {
        int32_t n = loop->nslots ? loop->nslots * 2 : 16;
        struct timer_slot *slots = realloc(loop->slots, (size_t)n * sizeof(*slots));
        if (slots == NULL)
            return MESH_ENOMEM;
        loop->slots = slots;
        int32_t *heap = realloc(loop->heap, (size_t)n * sizeof(*heap));
        if (heap == NULL)
            return MESH_ENOMEM;
        loop->heap = heap;
        for (int32_t i = n - 1; i >= loop->nslots; i--) {
            slots[i] = (struct timer_slot){.heap_idx = SLOT_FREE, .next_free = loop->free_slot};
            loop->free_slot = i;
        }
        loop->nslots = n;
    }
    int32_t slot = loop->free_slot;
    struct timer_slot *ts = &loop->slots[slot];
    loop->free_slot = ts->next_free;
    ts->cb = cb;
    ts->ctx = ctx;
    if (ms > UINT64_MAX / 2000u)
        ms = UINT64_MAX / 2000u;
    heap_insert(loop, slot, ms);
    return (int64_t)ts->gen << 32 | (int64_t)(slot + 1);
}

int mesh_loop_del_timer(struct mesh_loop *loop, int64_t id)
{
    int64_t slot = (id & 0xffffffff) - 1;
    if (id <= 0 || slot >= loop->nslots)
        return MESH_EINVAL;
    struct timer_slot *ts = &loop->slots[slot];
    if (ts->heap_idx == SLOT_FREE || ts->gen != (uint32_t)(id >> 32))
        return MESH_EINVAL;
    if (ts->heap_idx >= 0)
        heap_remove(loop, ts->heap_idx);
    slot_release(loop, (int32_t)slot); /* a firing timer: its return value is ignored */
    return 0;
}

static void fire_timers(struct mesh_loop *loop)
{
    uint64_t now = mesh_loop_now_us();
    uint64_t seq_start = loop->timer_seq; /* timers armed from here on wait for next time */
    while (loop->heap_len > 0 && !loop->stop) {
        int32_t slot = loop->heap[0];
        struct timer_slot *ts = &loop->slots[slot];
        if (ts->deadline_us > now || ts->seq >= seq_start)
            break;
        heap_remove(loop, 0);
        ts->heap_idx = SLOT_FIRING;
        uint32_t gen = ts->gen;
        int64_t id = (int64_t)gen << 32 | (int64_t)(slot + 1);
        int again = ts->cb(loop, id, ts->ctx);
        ts = &loop->slots[slot]; /* the callback may have grown the slab */
        if (ts->gen != gen || ts->heap_idx != SLOT_FIRING)
            continue; /* deleted inside its callback */
        if (again >= 0)
            heap_insert(loop, slot, (uint64_t)again);
        else
            slot_release(loop, slot);
    }
}

/* --- before-sleep hooks ------------------------------------------------------------------- */

int64_t mesh_loop_on_before_sleep(struct mesh_loop *loop, mesh_hook_cb cb, void *ctx)
{
    if (loop->nhooks == loop->hooks_alloc) {
        size_t n = loop->hooks_alloc ? loop->hooks_alloc * 2 : 8;
        struct hook *hooks = realloc(loop->hooks, n * sizeof(*hooks));
        if (hooks == NULL)
            return MESH_ENOMEM;
        loop->hooks = hooks;
        loop->hooks_alloc = n;
    }
    int64_t id = loop->next_hook_id++;
    loop->hooks[loop->nhooks++] = (struct hook){id, cb, ctx};
    return id;
}

void mesh_loop_del_before_sleep(struct mesh_loop *loop, int64_t id)
{
    for (size_t i = 0; i < loop->nhooks; i++) {
        if (loop->hooks[i].id == id && loop->hooks[i].cb != NULL) {
            loop->hooks[i].cb = NULL;
            loop->hooks_deleted = 1;
        }
    }
}

void mesh_loop_wake(struct mesh_loop *loop)
{
    loop->wake = 1;
}

static void run_hooks(struct mesh_loop *loop)
{
    loop->in_hooks = 1;
    for (size_t i = 0; i < loop->nhooks; i++) /* nhooks re-read: hooks added now run too */
        if (loop->hooks[i].cb != NULL)
            loop->hooks[i].cb(loop, loop->hooks[i].ctx);
    loop->in_hooks = 0;
    if (loop->hooks_deleted) {
        size_t kept = 0;
        for (size_t i = 0; i < loop->nhooks; i++)
            if (loop->hooks[i].cb != NULL)
                loop->hooks[kept++] = loop->hooks[i];
        loop->nhooks = kept;
        loop->hooks_deleted = 0;
    }
}

/* --- signals ------------------------------------------------------------------------------ */

/* signalfd needs the signal blocked in every thread, but a process may have
 * threads we did not start (the sanitizers' runtime, a library's) that do not
 * block it; the kernel may deliver a process-wide signal there, and its
 * default action would end the process. So a handler is installed too: it
 * only runs in such a thread, and sends the signal on to the loop's thread,
 * where it is blocked and waits for signalfd. */
static pid_t loop_tid;

static void forward_signal(int signo)
{
    int saved = errno;
    syscall(SYS_tgkill, getpid(), loop_tid, signo);
    errno = saved;
}

static void on_sigfd(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
        int signo = (int)info.ssi_signo;
        if (signo > 0 && signo < _NSIG && loop->sig_cb[signo] != NULL)
            loop->sig_cb[signo](loop, signo, loop->sig_ctx[signo]);
    }
}

int mesh_loop_on_signal(struct mesh_loop *loop, int signo, mesh_signal_cb cb, void *ctx)
{
    if (signo <= 0 || signo >= _NSIG || signo == SIGKILL || signo == SIGSTOP)
        return MESH_EINVAL;
    loop->sig_cb[signo] = cb;
    loop->sig_ctx[signo] = ctx;
    if (cb == NULL) /* stays blocked and in the set: a stray one is read and ignored */
        return 0;
    if (sigismember(&loop->sigs_handled, signo))
        return 0;
    sigset_t one, old;
    sigemptyset(&one);
    sigaddset(&one, signo);
    if (sigprocmask(SIG_BLOCK, &one, &old) != 0)
        return MESH_EIO;
    if (!sigismember(&old, signo))
        sigaddset(&loop->sigs_blocked_by_us, signo);
    sigaddset(&loop->sigs_handled, signo);
    struct sigaction act;
    memset(&act, 0, sizeof(act));
    act.sa_handler = forward_signal;
    act.sa_flags = SA_RESTART;
    sigfillset(&act.sa_mask);
    loop_tid = (pid_t)syscall(SYS_gettid);
    sigaction(signo, &act, &loop->sig_old[signo]);
    int fd = signalfd(loop->sigfd, &loop->sigs_handled, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return MESH_EIO;
    if (loop->sigfd < 0) {
        loop->sigfd = fd;
        int rv = mesh_loop_add_fd(loop, fd, MESH_READ, on_sigfd, NULL);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* --- run ---------------------------------------------------------------------------------- */

static int next_timeout_ms(struct mesh_loop *loop)
{
    if (loop->wake || loop->stop)
        return 0;
    if (loop->heap_len == 0)
        return -1;
    uint64_t now = mesh_loop_now_us(), due = loop->slots[loop->heap[0]].deadline_us;
    if (due <= now)
        return 0;
    uint64_t ms = (due - now + 999) / 1000; /* round up: never wake before it is due */
    return ms > 24 * 3600 * 1000u ? 24 * 3600 * 1000 : (int)ms;
}

int mesh_loop_run(struct mesh_loop *loop)
{
    struct epoll_event events[MAX_EVENTS];
    int rv = 0;
    while (!loop->stop) {
        loop->wake = 0;
        run_hooks(loop);
        int n = epoll_wait(loop->epfd, events, MAX_EVENTS, next_timeout_ms(loop));
        loop->tick_us = mesh_loop_now_us();
        loop->tick_wall_us = mesh_wall_now_us();
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rv = MESH_EIO;
            break;
        }
        for (int i = 0; i < n; i++) {
            int fd = (int)(uint32_t)events[i].data.u64;
            uint32_t gen = (uint32_t)(events[i].data.u64 >> 32);
            if (fd >= loop->nfds)
                continue;
            struct fd_entry *fe = &loop->fds[fd];
            if (!fe->used || fe->gen != gen)
                continue; /* removed (maybe re-added) by an earlier callback */
            unsigned ready = 0;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                ready |= MESH_READ;
            if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                ready |= MESH_WRITE;
            ready &= fe->mask;
            if (ready != 0)
                fe->cb(loop, fd, ready, fe->ctx);
        }
        fire_timers(loop);
    }
    loop->stop = 0;
    return rv;
}

void mesh_loop_stop(struct mesh_loop *loop)
{
    loop->stop = 1;
}
