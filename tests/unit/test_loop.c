/* tests/unit/test_loop.c — the event loop (lib/loop.c): fds, timers, hooks,
 * stop and signals. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "mesh/err.h"
#include "mesh/loop.h"
#include "test.h"

static int stop_timer(struct mesh_loop *loop, int64_t id, void *ctx)
{
    int *fired = ctx;
    if (fired != NULL)
        (*fired)++;
    mesh_loop_stop(loop);
    return MESH_TIMER_DONE;
}

/* --- fds ---------------------------------------------------------------------------------- */

struct fd_state {
    int reads, writes;
    unsigned last_events;
};

static void on_read(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct fd_state *st = ctx;
    char buf[64];
    st->last_events = events;
    if (events & MESH_READ) {
        st->reads++;
        ssize_t n = read(fd, buf, sizeof(buf));
        (void)n;
    }
    if (events & MESH_WRITE)
        st->writes++;
}

static void test_fds(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    int p[2];
    CHECK(pipe(p) == 0);
    struct fd_state st = {0};
    CHECK_EQ_INT(mesh_loop_add_fd(loop, p[0], MESH_READ, on_read, &st), 0);
    CHECK_EQ_INT(mesh_loop_add_fd(loop, p[0], MESH_READ, on_read, &st), MESH_EINVAL);
    CHECK_EQ_INT(mesh_loop_mod_fd(loop, 999, MESH_READ), MESH_EINVAL);

    /* nothing readable: only the timer ends the run */
    mesh_loop_add_timer(loop, 20, stop_timer, NULL);
    CHECK_EQ_INT(mesh_loop_run(loop), 0);
    CHECK_EQ_INT(st.reads, 0);

    CHECK(write(p[1], "x", 1) == 1);
    mesh_loop_add_timer(loop, 20, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(st.reads, 1);
    CHECK_EQ_INT(st.last_events, MESH_READ);

    /* parked (mask 0): no callback though readable */
    CHECK_EQ_INT(mesh_loop_mod_fd(loop, p[0], 0), 0);
    CHECK(write(p[1], "y", 1) == 1);
    mesh_loop_add_timer(loop, 20, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(st.reads, 1);
    CHECK_EQ_INT(mesh_loop_mod_fd(loop, p[0], MESH_READ), 0);
    mesh_loop_add_timer(loop, 20, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(st.reads, 2);

    /* writable end */
    struct fd_state wst = {0};
    CHECK_EQ_INT(mesh_loop_add_fd(loop, p[1], MESH_WRITE, on_read, &wst), 0);
    mesh_loop_add_timer(loop, 10, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK(wst.writes >= 1);
    CHECK_EQ_INT(wst.last_events, MESH_WRITE);
    mesh_loop_del_fd(loop, p[1]);
    mesh_loop_del_fd(loop, p[1]); /* harmless twice */

    /* a hang-up is reported as readable */
    close(p[1]);
    mesh_loop_add_timer(loop, 20, stop_timer, NULL);
    int before = st.reads;
    mesh_loop_run(loop);
    CHECK(st.reads > before);
    mesh_loop_del_fd(loop, p[0]);
    close(p[0]);
    mesh_loop_free(loop);
}

/* The stale-event guard, deterministic: both fds readable in one epoll_wait;
 * whichever callback runs first deletes the other and closes it, then reuses
 * its number for a fresh fd that is also readable. The fresh one must not get
 * the stale event in the same iteration. */
struct reuse_state {
    struct mesh_loop *loop;
    int fds[2];
    int called[2];
    int fresh_called;
    int replaced;
    int pipe_w;
};

static void on_fresh(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct reuse_state *rs = ctx;
    rs->fresh_called++;
}

static void on_reuse(struct mesh_loop *loop, int fd, unsigned events, void *ctx)
{
    struct reuse_state *rs = ctx;
    int me = fd == rs->fds[0] ? 0 : 1;
    rs->called[me]++;
    if (!rs->replaced) {
        int victim = rs->fds[1 - me];
        mesh_loop_del_fd(loop, victim);
        close(victim);
        int p[2];
        if (pipe(p) == 0) {
            if (p[0] != victim) /* make it the same number */
                dup2(p[0], victim), close(p[0]);
            if (write(p[1], "r", 1) != 1)
                rs->fresh_called = -100;
            rs->pipe_w = p[1];
            mesh_loop_add_fd(loop, victim, MESH_READ, on_fresh, rs);
        }
        rs->replaced = 1;
    }
    char buf[8];
    ssize_t n = read(fd, buf, sizeof(buf));
    (void)n;
}

static void test_fd_reuse(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    int a[2], b[2];
    CHECK(pipe(a) == 0 && pipe(b) == 0);
    struct reuse_state rs = {.loop = loop, .fds = {a[0], b[0]}};
    mesh_loop_add_fd(loop, a[0], MESH_READ, on_reuse, &rs);
    mesh_loop_add_fd(loop, b[0], MESH_READ, on_reuse, &rs);
    CHECK(write(a[1], "1", 1) == 1 && write(b[1], "1", 1) == 1);
    /* one iteration: a 0 ms timer stops it after the fd callbacks */
    mesh_loop_add_timer(loop, 0, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(rs.called[0] + rs.called[1], 1);
    CHECK_EQ_INT(rs.fresh_called, 0); /* the stale event was not given to the new fd */
    /* next iteration the fresh fd is served */
    mesh_loop_add_timer(loop, 10, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK(rs.fresh_called >= 1);
    for (int i = 0; i < 2; i++) {
        mesh_loop_del_fd(loop, rs.fds[i]);
        close(rs.fds[i]);
    }
    close(a[1]);
    close(b[1]);
    close(rs.pipe_w);
    mesh_loop_free(loop);
}

/* --- timers ------------------------------------------------------------------------------- */

struct order {
    char seen[32];
    int n;
};

struct tagged {
    struct order *order;
    char tag;
};

static int record(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct tagged *t = ctx;
    t->order->seen[t->order->n++] = t->tag;
    return MESH_TIMER_DONE;
}

static void test_timer_order(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct order order = {{0}, 0};
    struct tagged c = {&order, 'c'}, a = {&order, 'a'}, b = {&order, 'b'}, b2 = {&order, 'B'};
    uint64_t t0 = mesh_loop_now_us();
    CHECK(mesh_loop_add_timer(loop, 30, record, &c) > 0);
    CHECK(mesh_loop_add_timer(loop, 10, record, &a) > 0);
    CHECK(mesh_loop_add_timer(loop, 20, record, &b) > 0);
    CHECK(mesh_loop_add_timer(loop, 20, record, &b2) > 0); /* same time: armed later, fires later */
    mesh_loop_add_timer(loop, 40, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_STR(order.seen, "abBc");
    CHECK(mesh_loop_now_us() - t0 >= 40000); /* never early */
    mesh_loop_free(loop);
}

struct rearm {
    int fired;
    int64_t last_id;
    uint64_t t[8];
};

static int rearm_cb(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct rearm *r = ctx;
    r->last_id = id;
    r->t[r->fired++] = mesh_loop_now_us();
    if (r->fired == 4) {
        mesh_loop_stop(loop);
        return MESH_TIMER_DONE;
    }
    return 5;
}

static void test_timer_rearm(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct rearm r = {0};
    int64_t id = mesh_loop_add_timer(loop, 5, rearm_cb, &r);
    mesh_loop_run(loop);
    CHECK_EQ_INT(r.fired, 4);
    CHECK_EQ_INT(r.last_id, id); /* the same timer each time */
    for (int i = 1; i < 4; i++)
        CHECK(r.t[i] - r.t[i - 1] >= 5000);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, id), MESH_EINVAL); /* it has ended */
    mesh_loop_free(loop);
}

/* A 0 ms re-arm fires once per iteration, not in a tight loop. */
struct spin {
    int fired, hooks;
};

static int spin_cb(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct spin *s = ctx;
    if (++s->fired == 50) {
        mesh_loop_stop(loop);
        return MESH_TIMER_DONE;
    }
    return 0;
}

static void count_hook(struct mesh_loop *loop, void *ctx)
{
    struct spin *s = ctx;
    s->hooks++;
}

static void test_timer_zero(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct spin s = {0};
    mesh_loop_add_timer(loop, 0, spin_cb, &s);
    mesh_loop_on_before_sleep(loop, count_hook, &s);
    mesh_loop_run(loop);
    CHECK_EQ_INT(s.fired, 50);
    CHECK_EQ_INT(s.hooks, 50);
    mesh_loop_free(loop);
}

struct deleter {
    int64_t victim;
    int victim_fired;
    int self_fired;
    int64_t self_id;
    int del_rv;
};

static int victim_cb(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct deleter *d = ctx;
    d->victim_fired++;
    return MESH_TIMER_DONE;
}

static int killer_cb(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct deleter *d = ctx;
    d->del_rv = mesh_loop_del_timer(loop, d->victim);
    return MESH_TIMER_DONE;
}

static int self_del_cb(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct deleter *d = ctx;
    d->self_fired++;
    mesh_loop_del_timer(loop, id);
    return 1; /* ignored: it deleted itself */
}

static void test_timer_delete(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct deleter d = {0};
    /* both due at 10 ms; the killer, armed first, runs first and deletes the victim */
    mesh_loop_add_timer(loop, 10, killer_cb, &d);
    d.victim = mesh_loop_add_timer(loop, 10, victim_cb, &d);
    d.self_id = mesh_loop_add_timer(loop, 5, self_del_cb, &d);
    int64_t never = mesh_loop_add_timer(loop, 15, victim_cb, &d);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, never), 0);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, never), MESH_EINVAL);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, 0), MESH_EINVAL);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, 12345), MESH_EINVAL);
    mesh_loop_add_timer(loop, 40, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(d.del_rv, 0);
    CHECK_EQ_INT(d.victim_fired, 0);
    CHECK_EQ_INT(d.self_fired, 1);
    /* the freed slot is reused with a new id; the old id stays dead */
    int64_t again = mesh_loop_add_timer(loop, 1000, victim_cb, &d);
    CHECK(again != d.victim && again != d.self_id);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, d.victim), MESH_EINVAL);
    CHECK_EQ_INT(mesh_loop_del_timer(loop, again), 0);
    mesh_loop_free(loop);
}

/* Many timers: the heap keeps them in order. */
struct many {
    uint64_t last_deadline;
    int fired, out_of_order;
};

static int many_cb(struct mesh_loop *loop, int64_t id, void *ctx)
{
    struct many *m = ctx;
    m->fired++;
    return MESH_TIMER_DONE;
}

static void test_timer_many(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct many m = {0};
    int64_t ids[500];
    for (int i = 0; i < 500; i++)
        ids[i] = mesh_loop_add_timer(loop, (uint64_t)((i * 7919) % 30), many_cb, &m);
    for (int i = 0; i < 500; i += 5)
        CHECK_EQ_INT(mesh_loop_del_timer(loop, ids[i]), 0);
    mesh_loop_add_timer(loop, 50, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(m.fired, 400);
    mesh_loop_free(loop);
}

/* --- hooks, stop -------------------------------------------------------------------------- */

struct hooks {
    int a, b;
    int64_t b_id;
    int iterations;
};

static void hook_a(struct mesh_loop *loop, void *ctx)
{
    struct hooks *h = ctx;
    h->a++;
    if (h->a == 3)
        mesh_loop_stop(loop);
}

static void hook_b(struct mesh_loop *loop, void *ctx)
{
    struct hooks *h = ctx;
    h->b++;
    mesh_loop_del_before_sleep(loop, h->b_id); /* once only */
}

static int tick(struct mesh_loop *loop, int64_t id, void *ctx)
{
    return 1;
}

static void test_hooks(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct hooks h = {0};
    CHECK(mesh_loop_on_before_sleep(loop, hook_a, &h) > 0);
    h.b_id = mesh_loop_on_before_sleep(loop, hook_b, &h);
    CHECK(h.b_id > 0);
    int64_t t = mesh_loop_add_timer(loop, 1, tick, NULL); /* keeps the loop turning */
    CHECK_EQ_INT(mesh_loop_run(loop), 0);
    CHECK_EQ_INT(h.a, 3);
    CHECK_EQ_INT(h.b, 1);
    mesh_loop_del_timer(loop, t);
    mesh_loop_free(loop);
}

/* A hook that runs after another made work for it: mesh_loop_wake() keeps the
 * loop from sleeping on that work. */
struct wake {
    int work; /* set by the late hook for the early one */
    int done;
    uint64_t start;
};

static void early_hook(struct mesh_loop *loop, void *ctx)
{
    struct wake *w = ctx;
    if (w->work) {
        w->done = 1;
        mesh_loop_stop(loop);
    }
}

static void late_hook(struct mesh_loop *loop, void *ctx)
{
    struct wake *w = ctx;
    if (!w->work) {
        w->work = 1;
        mesh_loop_wake(loop);
    }
}

static void test_wake(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    struct wake w = {0};
    mesh_loop_on_before_sleep(loop, early_hook, &w);
    mesh_loop_on_before_sleep(loop, late_hook, &w);
    int64_t guard = mesh_loop_add_timer(loop, 2000, stop_timer, NULL);
    uint64_t t0 = mesh_loop_now_us();
    mesh_loop_run(loop);
    CHECK_EQ_INT(w.done, 1);
    CHECK(mesh_loop_now_us() - t0 < 500000); /* did not sleep until the guard */
    mesh_loop_del_timer(loop, guard);
    mesh_loop_free(loop);
}

static void test_stop_and_rerun(void)
{
    struct mesh_loop *loop = mesh_loop_new();
    int fired = 0;
    mesh_loop_add_timer(loop, 1, stop_timer, &fired);
    CHECK_EQ_INT(mesh_loop_run(loop), 0);
    mesh_loop_add_timer(loop, 1, stop_timer, &fired);
    CHECK_EQ_INT(mesh_loop_run(loop), 0); /* runs again after a stop */
    CHECK_EQ_INT(fired, 2);
    mesh_loop_free(loop);
}

/* --- signals ------------------------------------------------------------------------------ */

struct sigs {
    int usr1, usr2, last;
};

static void on_sig(struct mesh_loop *loop, int signo, void *ctx)
{
    struct sigs *s = ctx;
    s->last = signo;
    if (signo == SIGUSR1)
        s->usr1++;
    else if (signo == SIGUSR2)
        s->usr2++;
    if (s->usr1 > 0 && s->usr2 > 0)
        mesh_loop_stop(loop);
}

static void test_signals(void)
{
    sigset_t before;
    sigprocmask(SIG_BLOCK, NULL, &before);
    CHECK(!sigismember(&before, SIGUSR1));
    struct mesh_loop *loop = mesh_loop_new();
    struct sigs s = {0};
    CHECK_EQ_INT(mesh_loop_on_signal(loop, SIGUSR1, on_sig, &s), 0);
    CHECK_EQ_INT(mesh_loop_on_signal(loop, SIGUSR2, on_sig, &s), 0);
    CHECK_EQ_INT(mesh_loop_on_signal(loop, SIGKILL, on_sig, &s), MESH_EINVAL);
    CHECK_EQ_INT(mesh_loop_on_signal(loop, 0, on_sig, &s), MESH_EINVAL);
    raise(SIGUSR1); /* blocked now: it waits for the loop, it does not kill us */
    raise(SIGUSR2);
    int64_t guard = mesh_loop_add_timer(loop, 2000, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(s.usr1, 1);
    CHECK_EQ_INT(s.usr2, 1);
    mesh_loop_del_timer(loop, guard);
    /* unhandled again: a pending one is read and dropped */
    CHECK_EQ_INT(mesh_loop_on_signal(loop, SIGUSR2, NULL, NULL), 0);
    raise(SIGUSR2);
    mesh_loop_add_timer(loop, 20, stop_timer, NULL);
    mesh_loop_run(loop);
    CHECK_EQ_INT(s.usr2, 1);
    raise(SIGUSR1); /* pending at free: consumed, not delivered after unblocking */
    mesh_loop_free(loop);
    sigset_t after;
    sigprocmask(SIG_BLOCK, NULL, &after);
    CHECK(!sigismember(&after, SIGUSR1)); /* what we blocked is unblocked */
    CHECK(!sigismember(&after, SIGUSR2));
}

static void test_now(void)
{
    uint64_t a = mesh_loop_now_us();
    usleep(10000);
    uint64_t b = mesh_loop_now_us();
    CHECK(b - a >= 10000);
    CHECK(b - a < 1000000);
}

int main(void)
{
    RUN(test_fds);
    RUN(test_fd_reuse);
    RUN(test_timer_order);
    RUN(test_timer_rearm);
    RUN(test_timer_zero);
    RUN(test_timer_delete);
    RUN(test_timer_many);
    RUN(test_hooks);
    RUN(test_wake);
    RUN(test_stop_and_rerun);
    RUN(test_signals);
    RUN(test_now);
    return TEST_REPORT();
}
