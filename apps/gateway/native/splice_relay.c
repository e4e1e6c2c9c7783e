// The gateway's native byte mover (ADR 0011). JavaScript accepts, checks the grant and connects to the
// workstation; then it hands both sockets here (`add` duplicates the descriptors, JavaScript closes its
// own) and a relay thread moves the bytes with epoll: read/write through one buffer per thread for small
// messages (input events, keystrokes), splice(2) through a pipe once a direction carries bulk data
// (desktop pixels, file copies), so the payload never enters user space. Idle connections hold no buffer
// and no pipe. The thread reports each session's end (which side closed or failed, bytes each way) back
// to JavaScript in batches. Half-close is relayed: a FIN from one side ends writing to the other once
// every byte before it has been written, and the other direction runs on.
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (256 * 1024)  // one per relay thread, shared by every small read
#define BULK (16 * 1024)        // a read this large means bulk data: move the direction to a pipe
#define PIPE_SIZE (256 * 1024)  // like HAProxy's tune.bufsize 128k+: large moves, fewer wake-ups
#define POOL_MAX 64             // idle pipes kept per thread
#define PIPES_MAX 2048          // pipes in use per thread (two descriptors each) before falling back to copies
#define ROUNDS 8                // reads per wake-up before other connections get their turn
#define MAX_THREADS 16

enum end_kind { END_CLOSED = 0, END_ERROR = 1, END_REQUESTED = 2 };

typedef struct conn conn;
typedef struct relay_thread relay_thread;

typedef struct {
  conn *c;
  int fd;
  uint8_t idx;      // 0: client, 1: target
  uint32_t armed;   // the epoll events currently registered
} side_t;

typedef struct {
  uint64_t bytes;             // read from the source; written here, read by JavaScript (atomics)
  char *pend;                 // copy mode: bytes the destination has not taken yet
  uint32_t pend_off, pend_len;
  int pipe_r, pipe_w;         // splice mode: the pipe this direction moves through, -1 when none
  uint32_t in_pipe;
  bool eof, shut;             // the source sent FIN; the destination was sent FIN
} dir_t;

struct conn {
  uint32_t index, gen;
  relay_thread *t;
  side_t s[2];
  dir_t d[2];                 // d[0]: client → target, d[1]: target → client
  int8_t first_eof;           // which side sent FIN first, -1 none
  int8_t err_side;
  int err;
  bool done;                  // finished by the relay thread (its descriptors are closed)
  bool close_requested;
  conn *next_done;
};

struct relay_thread {
  int ep, evfd;
  pthread_t th;
  char *buf;
  int pool[POOL_MAX][2];
  int pooled, pipes_in_use;
  uint32_t *requests;         // slot ids JavaScript asked to close (under the lock)
  size_t nreq, capreq;
};

// Shared with JavaScript, under `lock`: the slot table, the queue of ended sessions, close requests.
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static conn **slots;
static uint32_t *slot_gen;
static uint32_t nslots, *free_slots, nfree;
static double *ended;         // records of 6 numbers: id, kind, side, errno, bytes up, bytes down
static size_t nended, capended;
static napi_threadsafe_function notify;
static relay_thread threads[MAX_THREADS];
static int nthreads, next_thread;
static uint64_t live;

static double conn_id(const conn *c) { return (double)c->gen * 4294967296.0 + c->index; }

// ---- the relay thread ------------------------------------------------------------------------

static void arm(conn *c, int i) {
  side_t *s = &c->s[i];
  dir_t *from = &c->d[i], *to = &c->d[1 - i];
  uint32_t want = 0;
  if (!from->eof && from->pend_len == 0 && from->in_pipe == 0) want |= EPOLLIN | EPOLLRDHUP;
  if (to->pend_len > 0 || to->in_pipe > 0) want |= EPOLLOUT;
  if (want == s->armed) return;
  // Nothing wanted: leave the set altogether, or a hung-up socket would wake us on every wait
  // (epoll reports EPOLLHUP and EPOLLERR whatever the mask says).
  struct epoll_event ev = {.events = want, .data.ptr = s};
  int op = want == 0 ? EPOLL_CTL_DEL : s->armed == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  epoll_ctl(c->t->ep, op, s->fd, &ev);
  s->armed = want;
}

static void fail(conn *c, int side, int err) {
  if (c->err_side < 0) {
    c->err_side = (int8_t)side;
    c->err = err;
  }
  c->done = true;
}

static void release_pipe(relay_thread *t, dir_t *d) {
  if (d->pipe_r < 0) return;
  if (d->in_pipe == 0 && t->pooled < POOL_MAX) {
    t->pool[t->pooled][0] = d->pipe_r;
    t->pool[t->pooled][1] = d->pipe_w;
    t->pooled++;
  } else {
    close(d->pipe_r);
    close(d->pipe_w);
  }
  t->pipes_in_use--;
  d->pipe_r = d->pipe_w = -1;
  d->in_pipe = 0;
}

static bool acquire_pipe(relay_thread *t, dir_t *d) {
  if (t->pipes_in_use >= PIPES_MAX) return false;
  int p[2];
  if (t->pooled > 0) {
    t->pooled--;
    p[0] = t->pool[t->pooled][0];
    p[1] = t->pool[t->pooled][1];
  } else {
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return false;
    fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);  // best effort: a smaller pipe still works
  }
  d->pipe_r = p[0];
  d->pipe_w = p[1];
  t->pipes_in_use++;
  return true;
}

// The source of direction i sent FIN: pass it on once nothing of the direction is pending.
static void pass_fin(conn *c, int i) {
  dir_t *d = &c->d[i];
  if (!d->eof || d->shut || d->pend_len || d->in_pipe) return;
  shutdown(c->s[1 - i].fd, SHUT_WR);
  d->shut = true;
  if (c->d[1 - i].shut) c->done = true;  // both directions finished
}

// Write what direction i holds to its destination. Returns false when the destination would block.
static bool flush(conn *c, int i) {
  dir_t *d = &c->d[i];
  int dst = c->s[1 - i].fd;
  while (d->pend_len) {
    ssize_t m = send(dst, d->pend + d->pend_off, d->pend_len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (m < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) fail(c, 1 - i, errno);
      return false;
    }
    d->pend_off += (uint32_t)m;
    d->pend_len -= (uint32_t)m;
  }
  if (d->pend) {
    free(d->pend);
    d->pend = NULL;
    d->pend_off = 0;
  }
  while (d->in_pipe) {
    ssize_t m = splice(d->pipe_r, NULL, dst, NULL, d->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m < 0) {
      if (errno == EAGAIN) return false;
      if (errno == EINTR) continue;
      fail(c, 1 - i, errno);
      return false;
    }
    d->in_pipe -= (uint32_t)m;
  }
  return true;
}

static void note_eof(conn *c, int i) {
  c->d[i].eof = true;
  if (c->first_eof < 0) c->first_eof = (int8_t)i;
  pass_fin(c, i);
}

// Move what side i has to say to the other side, until it has nothing more, the other side is full,
// or ROUNDS reads were made (then epoll, level-triggered, calls again).
static void pump(conn *c, int i) {
  relay_thread *t = c->t;
  dir_t *d = &c->d[i];
  int src = c->s[i].fd, dst = c->s[1 - i].fd;
  for (int round = 0; round < ROUNDS && !c->done && !d->eof; round++) {
    if (d->pend_len || d->in_pipe) return;
    ssize_t n;
    if (d->pipe_r >= 0) {
      n = splice(src, NULL, d->pipe_w, NULL, PIPE_SIZE, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        __atomic_add_fetch(&d->bytes, (uint64_t)n, __ATOMIC_RELAXED);
        d->in_pipe = (uint32_t)n;
        if (!flush(c, i)) return;
        if (n < BULK) release_pipe(t, d);  // the burst is over: back to copies, the pipe to the pool
        if (n < PIPE_SIZE / 2) return;      // the socket is most likely drained
        continue;
      }
    } else {
      n = recv(src, t->buf, READ_BUF, MSG_DONTWAIT);
      if (n > 0) {
        __atomic_add_fetch(&d->bytes, (uint64_t)n, __ATOMIC_RELAXED);
        ssize_t m = send(dst, t->buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (m < 0) {
          if (errno != EAGAIN && errno != EINTR) {
            fail(c, 1 - i, errno);
            return;
          }
          m = 0;
        }
        if (m < n) {
          // The destination is full: keep the rest and stop reading until it drains.
          d->pend = malloc((size_t)(n - m));
          if (!d->pend) {
            fail(c, 1 - i, ENOMEM);
            return;
          }
          memcpy(d->pend, t->buf + m, (size_t)(n - m));
          d->pend_len = (uint32_t)(n - m);
          return;
        }
        if (n >= BULK) acquire_pipe(t, d);  // the next reads move through a pipe
        if (n < READ_BUF) return;           // a short read emptied the receive queue
        continue;
      }
    }
    if (n == 0) {
      note_eof(c, i);
      return;
    }
    if (errno == EAGAIN) {
      if (d->pipe_r >= 0) release_pipe(t, d);  // nothing more for now: an idle direction holds no pipe
      return;
    }
    if (errno == EINTR) continue;
    fail(c, i, errno);
    return;
  }
}

static void finish(conn *c) {
  relay_thread *t = c->t;
  for (int i = 0; i < 2; i++) {
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->s[i].fd, NULL);
    close(c->s[i].fd);
    c->s[i].fd = -1;
    release_pipe(t, &c->d[i]);
    free(c->d[i].pend);
    c->d[i].pend = NULL;
    c->d[i].pend_len = 0;
  }
}

static void on_event(conn *c, int i, uint32_t events) {
  dir_t *to = &c->d[1 - i];
  // Writable, or hung up or failed (the write then says why): what the other side said to this one.
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (to->pend_len || to->in_pipe)) {
    if (flush(c, 1 - i)) {
      pass_fin(c, 1 - i);
      if (!c->done) pump(c, 1 - i);
    }
  }
  dir_t *from = &c->d[i];
  if (!c->done && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !from->eof && !from->pend_len && !from->in_pipe) pump(c, i);
  if (!c->done && (events & EPOLLERR)) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->s[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) fail(c, i, err);
  }
  if (!c->done && (events & EPOLLHUP) && from->eof) {
    // Gone both ways (a reset, or our FIN answered): nothing more can be said to this side.
    if (to->pend_len || to->in_pipe) fail(c, i, EPIPE);
    else c->done = true;
  }
  if (!c->done) {
    arm(c, 0);
    arm(c, 1);
  }
}

static void publish(conn *done_list) {
  bool was_empty;
  pthread_mutex_lock(&lock);
  was_empty = nended == 0;
  for (conn *c = done_list; c; c = c->next_done) {
    if (nended + 6 > capended) {
      size_t cap = capended ? capended * 2 : 6 * 256;
      double *grown = realloc(ended, cap * sizeof *ended);
      if (!grown) break;  // cannot happen short of exhaustion; the session stays listed as live
      ended = grown;
      capended = cap;
    }
    double *r = ended + nended;
    r[0] = conn_id(c);
    r[1] = c->close_requested ? END_REQUESTED : c->err_side >= 0 ? END_ERROR : END_CLOSED;
    r[2] = c->err_side >= 0 ? c->err_side : c->first_eof;
    r[3] = c->err;
    r[4] = (double)__atomic_load_n(&c->d[0].bytes, __ATOMIC_RELAXED);
    r[5] = (double)__atomic_load_n(&c->d[1].bytes, __ATOMIC_RELAXED);
    nended += 6;
    live--;
  }
  // Under the lock: init may swap `notify` (the call only queues, it never waits for JavaScript).
  if (was_empty && nended) napi_call_threadsafe_function(notify, NULL, napi_tsfn_nonblocking);
  pthread_mutex_unlock(&lock);
}

static void *run(void *arg) {
  relay_thread *t = arg;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(t->ep, evs, 256, -1);
    if (n < 0) continue;  // EINTR
    conn *done_list = NULL;
    for (int k = 0; k < n; k++) {
      if (evs[k].data.ptr == NULL) {
        uint64_t v;
        ssize_t r = read(t->evfd, &v, sizeof v);
        (void)r;
        pthread_mutex_lock(&lock);
        for (size_t q = 0; q < t->nreq; q++) {
          uint32_t idx = t->requests[q];
          conn *c = idx < nslots ? slots[idx] : NULL;
          if (c && c->t == t && !c->done && c->close_requested) {
            c->done = true;
            finish(c);
            c->next_done = done_list;
            done_list = c;
          }
        }
        t->nreq = 0;
        pthread_mutex_unlock(&lock);
        continue;
      }
      side_t *s = evs[k].data.ptr;
      conn *c = s->c;
      if (c->done) continue;  // finished earlier in this batch
      on_event(c, s->idx, evs[k].events);
      if (c->done) {
        finish(c);
        c->next_done = done_list;
        done_list = c;
      }
    }
    // Published after the batch: JavaScript frees a conn once it has read its end, and a later event
    // of this batch may still name it.
    if (done_list) publish(done_list);
  }
  return NULL;
}

// ---- the JavaScript side ----------------------------------------------------------------------

#define CHECK(call)                                                            \
  do {                                                                         \
    if ((call) != napi_ok) {                                                   \
      napi_throw_error(env, NULL, "stagedoor native relay: " #call " failed"); \
      return NULL;                                                             \
    }                                                                          \
  } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_value m, e, code;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &e);
  napi_create_int32(env, err, &code);
  napi_set_named_property(env, e, "errno", code);
  napi_throw(env, e);
  return NULL;
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)context;
  (void)data;
  if (!env || !js_cb) return;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, js_cb, 0, NULL, NULL);
}

// init(onEnded, threads): start the relay threads; onEnded() is called when ends wait in takeEnded().
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (nthreads) {
    // Loaded again in the same process (a test runner re-importing modules): the threads stay, the
    // newest caller hears the ends (records of sessions it never added are skipped by it).
    napi_threadsafe_function fresh;
    CHECK(napi_create_string_utf8(env, "stagedoor-relay", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &fresh));
    CHECK(napi_unref_threadsafe_function(env, fresh));
    pthread_mutex_lock(&lock);
    napi_threadsafe_function old = notify;
    notify = fresh;
    bool pending = nended > 0;
    pthread_mutex_unlock(&lock);
    napi_release_threadsafe_function(old, napi_tsfn_release);
    if (pending) napi_call_threadsafe_function(fresh, NULL, napi_tsfn_nonblocking);
    return NULL;
  }
  int32_t want = 1;
  if (argc > 1) napi_get_value_int32(env, argv[1], &want);
  if (want < 1) want = 1;
  if (want > MAX_THREADS) want = MAX_THREADS;
  CHECK(napi_create_string_utf8(env, "stagedoor-relay", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &notify));
  CHECK(napi_unref_threadsafe_function(env, notify));  // the relay never keeps the process alive
  for (int i = 0; i < want; i++) {
    relay_thread *t = &threads[i];
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->buf = malloc(READ_BUF);
    if (t->ep < 0 || t->evfd < 0 || !t->buf) return throw_errno(env, "stagedoor native relay: start", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->evfd, &ev);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&t->th, &attr, run, t);
    pthread_attr_destroy(&attr);
    if (rc) return throw_errno(env, "stagedoor native relay: thread", rc);
    pthread_detach(t->th);
    nthreads = i + 1;
  }
  return NULL;
}

static int dup_socket(int fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d >= 0) fcntl(d, F_SETFL, fcntl(d, F_GETFL) | O_NONBLOCK);
  return d;
}

// add(clientFd, targetFd, initial?: Buffer) → id. The descriptors are duplicated: the caller closes its own.
static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!nthreads) {
    napi_throw_error(env, NULL, "stagedoor native relay: not started");
    return NULL;
  }
  int32_t fds[2];
  CHECK(napi_get_value_int32(env, argv[0], &fds[0]));
  CHECK(napi_get_value_int32(env, argv[1], &fds[1]));
  void *initial = NULL;
  size_t initial_len = 0;
  if (argc > 2) {
    bool is_buffer = false;
    napi_is_buffer(env, argv[2], &is_buffer);
    if (is_buffer) napi_get_buffer_info(env, argv[2], &initial, &initial_len);
  }
  conn *c = calloc(1, sizeof *c);
  if (!c) return throw_errno(env, "stagedoor native relay: add", ENOMEM);
  c->first_eof = c->err_side = -1;
  for (int i = 0; i < 2; i++) {
    c->s[i].c = c;
    c->s[i].idx = (uint8_t)i;
    c->d[i].pipe_r = c->d[i].pipe_w = -1;
    c->s[i].fd = dup_socket(fds[i]);
  }
  if (c->s[0].fd < 0 || c->s[1].fd < 0) {
    int err = errno;
    if (c->s[0].fd >= 0) close(c->s[0].fd);
    if (c->s[1].fd >= 0) close(c->s[1].fd);
    free(c);
    return throw_errno(env, "stagedoor native relay: add", err);
  }
  if (initial_len) {
    // Bytes JavaScript read before the relay began (after a PROXY header): the first to go up.
    c->d[0].pend = malloc(initial_len);
    memcpy(c->d[0].pend, initial, initial_len);
    c->d[0].pend_len = (uint32_t)initial_len;
    c->d[0].bytes = initial_len;
  }
  pthread_mutex_lock(&lock);
  if (nfree) {
    c->index = free_slots[--nfree];
  } else {
    uint32_t cap = nslots ? nslots * 2 : 1024;
    conn **grown = realloc(slots, cap * sizeof *slots);
    uint32_t *gens = grown ? realloc(slot_gen, cap * sizeof *slot_gen) : NULL;
    uint32_t *frees = gens ? realloc(free_slots, cap * sizeof *free_slots) : NULL;
    if (grown) slots = grown;
    if (gens) slot_gen = gens;
    if (frees) free_slots = frees;
    if (!frees) {
      pthread_mutex_unlock(&lock);
      close(c->s[0].fd);
      close(c->s[1].fd);
      free(c->d[0].pend);
      free(c);
      return throw_errno(env, "stagedoor native relay: add", ENOMEM);
    }
    for (uint32_t k = cap; k > nslots + 1; k--) free_slots[nfree++] = k - 1;
    for (uint32_t k = nslots; k < cap; k++) {
      slots[k] = NULL;
      slot_gen[k] = 0;
    }
    c->index = nslots;
    nslots = cap;
  }
  // Ids are numbers in JavaScript (exact to 2^53): the generation wraps within 20 bits.
  slot_gen[c->index] = slot_gen[c->index] % 0xfffff + 1;
  c->gen = slot_gen[c->index];
  slots[c->index] = c;
  live++;
  c->t = &threads[next_thread];
  next_thread = (next_thread + 1) % nthreads;
  pthread_mutex_unlock(&lock);
  // Registered last: from here on the relay thread may act on the connection.
  for (int i = 0; i < 2; i++) {
    dir_t *from = &c->d[i], *to = &c->d[1 - i];
    c->s[i].armed = (from->pend_len ? 0 : EPOLLIN | EPOLLRDHUP) | (to->pend_len ? EPOLLOUT : 0);
    struct epoll_event ev = {.events = c->s[i].armed, .data.ptr = &c->s[i]};
    if (c->s[i].armed) epoll_ctl(c->t->ep, EPOLL_CTL_ADD, c->s[i].fd, &ev);
  }
  CHECK(napi_create_double(env, conn_id(c), &out));
  return out;
}

static conn *lookup(napi_env env, napi_value v) {
  double id;
  if (napi_get_value_double(env, v, &id) != napi_ok) return NULL;
  uint32_t index = (uint32_t)((uint64_t)id & 0xffffffffu), gen = (uint32_t)((uint64_t)id >> 32);
  conn *c = index < nslots ? slots[index] : NULL;
  return c && c->gen == gen ? c : NULL;
}

// close(id): end the session now (revocation, shutdown). Its end still arrives through takeEnded().
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pthread_mutex_lock(&lock);
  conn *c = lookup(env, argv[0]);
  relay_thread *t = NULL;
  if (c && !c->close_requested) {
    c->close_requested = true;
    t = c->t;
    if (t->nreq == t->capreq) {
      size_t cap = t->capreq ? t->capreq * 2 : 64;
      uint32_t *grown = realloc(t->requests, cap * sizeof *grown);
      if (grown) {
        t->requests = grown;
        t->capreq = cap;
      }
    }
    if (t->nreq < t->capreq) t->requests[t->nreq++] = c->index;
  }
  pthread_mutex_unlock(&lock);
  if (t) {
    uint64_t one = 1;
    ssize_t r = write(t->evfd, &one, sizeof one);
    (void)r;
  }
  return NULL;
}

// bytes(id, out: Float64Array(2)): bytes read so far from the client and from the target.
static napi_value js_bytes(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  size_t length;
  void *data;
  CHECK(napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL));
  if (type != napi_float64_array || length < 2) {
    napi_throw_type_error(env, NULL, "bytes(id, out): out must be a Float64Array of 2");
    return NULL;
  }
  double *out = data;
  // Only this thread frees a conn (in takeEnded), so it cannot vanish here; counters are atomic.
  conn *c = lookup(env, argv[0]);
  out[0] = c ? (double)__atomic_load_n(&c->d[0].bytes, __ATOMIC_RELAXED) : 0;
  out[1] = c ? (double)__atomic_load_n(&c->d[1].bytes, __ATOMIC_RELAXED) : 0;
  return NULL;
}

// takeEnded() → number[] of records [id, kind, side, errno, bytesUp, bytesDown]; frees their slots.
static napi_value js_take_ended(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value arr;
  pthread_mutex_lock(&lock);
  size_t n = nended;
  napi_status st = napi_create_array_with_length(env, n, &arr);
  for (size_t k = 0; st == napi_ok && k < n; k++) {
    napi_value v;
    napi_create_double(env, ended[k], &v);
    napi_set_element(env, arr, (uint32_t)k, v);
    if (k % 6 == 0) {
      uint32_t index = (uint32_t)((uint64_t)ended[k] & 0xffffffffu);
      conn *c = slots[index];
      slots[index] = NULL;
      free_slots[nfree++] = index;
      free(c);
    }
  }
  nended = 0;
  pthread_mutex_unlock(&lock);
  if (st != napi_ok) {
    napi_throw_error(env, NULL, "stagedoor native relay: takeEnded failed");
    return NULL;
  }
  return arr;
}

// stats() → { live, threads }
static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  pthread_mutex_lock(&lock);
  double l = (double)live;
  pthread_mutex_unlock(&lock);
  CHECK(napi_create_double(env, l, &v));
  CHECK(napi_set_named_property(env, o, "live", v));
  CHECK(napi_create_int32(env, nthreads, &v));
  CHECK(napi_set_named_property(env, o, "threads", v));
  return o;
}

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bytes", NULL, js_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"takeEnded", NULL, js_take_ended, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
