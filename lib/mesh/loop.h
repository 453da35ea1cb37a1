/* mesh/loop.h — a single-threaded event loop on epoll (redis ae.h in spirit).
 *
 * Watch an fd, arm a timer, run hooks before each sleep, catch signals (signalfd).
 * Everything runs on the thread of mesh_loop_run(); nothing is thread-safe. Callbacks
 * may add and remove fds, timers and hooks, their own included; an fd removed during
 * an iteration gets no more callbacks in it, even if its number is reused at once.
 * The loop closes no fd it is given: mesh_loop_del_fd() before close(). Hooks run in
 * order once per iteration before epoll_wait: HTTP/2 sessions flush there, SQLite
 * batches commit there; one that made work for a hook already run calls
 * mesh_loop_wake(). mesh_loop_free() is never called from a callback.
 */
#ifndef MESH_LOOP_H
#define MESH_LOOP_H

#include <stdint.h>

struct mesh_loop;

#define MESH_READ  1u
#define MESH_WRITE 2u

/* |events|: what is ready, a subset of what was asked for (an error or a hang-up
 * reports as readable and/or writable, whichever was asked, so that the next
 * read(2) or write(2) tells). */
typedef void (*mesh_fd_cb)(struct mesh_loop *loop, int fd, unsigned events, void *ctx);
/* Returns MESH_TIMER_DONE to end the timer, or a delay in ms to fire again. */
typedef int (*mesh_timer_cb)(struct mesh_loop *loop, int64_t id, void *ctx);
typedef void (*mesh_hook_cb)(struct mesh_loop *loop, void *ctx);
typedef void (*mesh_signal_cb)(struct mesh_loop *loop, int signo, void *ctx);

#define MESH_TIMER_DONE (-1)

/* Returns NULL when out of memory or out of fds. */
struct mesh_loop *mesh_loop_new(void);
/* Unblocks the signals mesh_loop_on_signal() blocked. Does not close watched fds. */
void mesh_loop_free(struct mesh_loop *loop);

/* Watches |fd| for |mask| (MESH_READ|MESH_WRITE; 0 parks it). MESH_EINVAL if
 * |fd| is watched already, MESH_EIO if epoll refuses it, MESH_ENOMEM. */
int mesh_loop_add_fd(struct mesh_loop *loop, int fd, unsigned mask, mesh_fd_cb cb, void *ctx);
/* Changes what |fd| is watched for. MESH_EINVAL if it is not watched. */
int mesh_loop_mod_fd(struct mesh_loop *loop, int fd, unsigned mask);
/* Stops watching |fd|; harmless if it is not watched. */
void mesh_loop_del_fd(struct mesh_loop *loop, int fd);

/* Arms a timer |ms| from now. Returns its id (> 0) or MESH_ENOMEM. Timers due
 * at the same time fire in the order they were armed; one (re)armed by a
 * callback fires no earlier than the next iteration. */
int64_t mesh_loop_add_timer(struct mesh_loop *loop, uint64_t ms, mesh_timer_cb cb, void *ctx);
/* Disarms timer |id|: 0, or MESH_EINVAL if there is no such timer (any more). */
int mesh_loop_del_timer(struct mesh_loop *loop, int64_t id);

/* Adds a before-sleep hook. Returns its id (> 0) or MESH_ENOMEM. */
int64_t mesh_loop_on_before_sleep(struct mesh_loop *loop, mesh_hook_cb cb, void *ctx);
void mesh_loop_del_before_sleep(struct mesh_loop *loop, int64_t id);
/* The next sleep does not block (callable from hooks and callbacks). */
void mesh_loop_wake(struct mesh_loop *loop);

/* Delivers |signo| through the loop (signalfd; the signal is blocked for the
 * calling thread, so call it before starting threads, and unblock it in a
 * forked child before exec: the mask is inherited). |cb| NULL stops handling
 * it. 0, MESH_EINVAL or MESH_EIO. */
int mesh_loop_on_signal(struct mesh_loop *loop, int signo, mesh_signal_cb cb, void *ctx);

/* Runs until mesh_loop_stop(). Returns 0, or MESH_EIO if epoll_wait failed. */
int mesh_loop_run(struct mesh_loop *loop);
/* Makes mesh_loop_run() return after the current iteration. */
void mesh_loop_stop(struct mesh_loop *loop);

/* CLOCK_MONOTONIC in µs. */
uint64_t mesh_loop_now_us(void);
/* CLOCK_REALTIME in µs since the epoch: event timestamps and query windows. */
uint64_t mesh_wall_now_us(void);
/* mesh_loop_now_us() and mesh_wall_now_us() as read when the current
 * iteration of |loop| woke up (as nginx caches its time per iteration): one
 * clock read per wakeup for code that stamps many requests per wakeup.
 * Before the first iteration: the time of mesh_loop_new(). */
uint64_t mesh_loop_tick_us(const struct mesh_loop *loop);
uint64_t mesh_loop_tick_wall_us(const struct mesh_loop *loop);

#endif
