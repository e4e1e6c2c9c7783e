// The relay thread (ADR 0011): a level-triggered epoll loop over the sessions JavaScript handed over.
// recv/send through one buffer per thread for small messages; splice through a pipe from a per-thread
// pool once a direction carries bulk data; a full destination keeps the rest and its source is not
// read until it drains; FIN relayed as shutdown(SHUT_WR) once nothing is pending.
//
// Failures of the relay itself (an allocation, an epoll_ctl) end that session with SIDE_RELAY and the
// errno, reported like any end; nothing on the path of an end or a close request allocates, so
// neither can be lost when memory runs out.
#include "relay.h"

// Shared with JavaScript, under `sr_lock`: the slot table, the queue of ended sessions, close requests.
pthread_mutex_t sr_lock = PTHREAD_MUTEX_INITIALIZER;
conn **sr_slots;
uint32_t *sr_slot_gen;
uint32_t sr_nslots, *sr_free_slots, sr_nfree;
double *sr_ended;         // records of 6 numbers: id, kind, side, errno, bytes up, bytes down
size_t sr_nended, sr_capended;
napi_threadsafe_function sr_notify;
relay_thread sr_threads[MAX_THREADS];
int sr_nthreads, sr_next_thread;
uint64_t sr_live;

int sr_faults_armed;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t fault_skip[FAULT_KINDS], fault_fail[FAULT_KINDS];

static void update_armed(void) {
  uint32_t any = 0;
  for (int k = 0; k < FAULT_KINDS; k++) any |= fault_skip[k] | fault_fail[k];
  __atomic_store_n(&sr_faults_armed, any != 0, __ATOMIC_RELAXED);
}

bool relay_fault(enum relay_fault kind) {
  bool hit = false;
  pthread_mutex_lock(&fault_lock);
  if (fault_skip[kind]) fault_skip[kind]--;
  else if (fault_fail[kind]) fault_fail[kind]--, hit = true;
  update_armed();
  pthread_mutex_unlock(&fault_lock);
  return hit;
}

void relay_set_fault(enum relay_fault kind, uint32_t skip, uint32_t fail) {
  pthread_mutex_lock(&fault_lock);
  fault_skip[kind] = skip;
  fault_fail[kind] = fail;
  update_armed();
  pthread_mutex_unlock(&fault_lock);
}

void relay_fail(conn *c, int side, int err) {
  if (ssh_end_as_hang_up(c, side, err)) return;
  if (c->err_side < 0) {
    c->err_side = (int8_t)side;
    c->err = err;
  }
  c->done = true;
}

// Whether side i may still say something: until its FIN, and an SSH client after its channel's EOF
// too (its window adjustments and CLOSE).
static bool reads(const conn *c, int i) {
  return !c->d[i].eof || (c->ssh && i == 0);
}

// Whether side i is read now: while it may still say something and what it said before has gone on (an
// SSH client always: relay.h ssh_reads_always).
static bool may_read(const conn *c, int i) {
  const dir_t *from = &c->d[i];
  return reads(c, i) && ((from->pend_len == 0 && from->in_pipe == 0) || ssh_reads_always(c, i)) && !ssh_window_closed(c, i);
}

static void arm(conn *c, int i) {
  side_t *s = &c->s[i];
  dir_t *to = &c->d[1 - i];
  uint32_t want = 0;
  if (may_read(c, i)) want |= EPOLLIN | EPOLLRDHUP;
  if (to->pend_len > 0 || to->in_pipe > 0) want |= EPOLLOUT;
  if (want == s->armed) return;
  // Nothing wanted: leave the set altogether, or a hung-up socket would wake us on every wait
  // (epoll reports EPOLLHUP and EPOLLERR whatever the mask says).
  struct epoll_event ev = {.events = want, .data.ptr = s};
  int op = want == 0 ? EPOLL_CTL_DEL : s->armed == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (relay_epoll_ctl(c->t->ep, op, s->fd, &ev) < 0) {
    // Not watched as it should be, the session would stall (or spin): end it and say why.
    relay_fail(c, SIDE_RELAY, errno);
    return;
  }
  s->armed = want;
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
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) return false;  // the direction stays in copy mode
    (void)fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE);  // best effort: a smaller pipe still works
  }
  d->pipe_r = p[0];
  d->pipe_w = p[1];
  t->pipes_in_use++;
  return true;
}

// The source of direction i sent FIN: pass it on once nothing of the direction is pending.
static void pass_fin(conn *c, int i) {
  dir_t *d = &c->d[i];
  if (c->ssh) return ssh_pass_fin(c, i);  // an SSH channel ends in packets: EOF, then CLOSE (its own checks)
  if (!d->eof || d->shut || d->pend_len || d->in_pipe) return;
  if (i == 1 && c->tls) tls_send_close_notify(c);  // a TLS client reads the end in its records first
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
      if (errno != EAGAIN) relay_fail(c, 1 - i, errno);
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
      relay_fail(c, 1 - i, errno);
      return false;
    }
    d->in_pipe -= (uint32_t)m;
  }
  return true;
}

void relay_note_eof(conn *c, int i) {
  c->d[i].eof = true;
  if (c->first_eof < 0) c->first_eof = (int8_t)i;
  pass_fin(c, i);
  // The other side goes on: bound its silence (linger.c). A WebSocket client's close has a fixed wait of its own.
  if (!c->d[1 - i].eof && !(i == 0 && c->tls && c->tls->websocket)) relay_half_closed(c);
}

// Move what side i has to say to the other side, until it has nothing more, the other side is full,
// or ROUNDS reads were made (then epoll, level-triggered, calls again).
static void pump(conn *c, int i) {
  if (c->tls) {
    tls_pump(c, i);
    return;
  }
  if (c->ssh) {
    ssh_pump(c, i);
    return;
  }
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
            relay_fail(c, 1 - i, errno);
            return;
          }
          m = 0;
        }
        if (m < n) {
          // The destination is full: keep the rest and stop reading until it drains.
          d->pend = relay_malloc((size_t)(n - m));
          if (!d->pend) {
            relay_fail(c, SIDE_RELAY, ENOMEM);
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
      relay_note_eof(c, i);
      return;
    }
    if (errno == EAGAIN) {
      if (d->pipe_r >= 0) release_pipe(t, d);  // nothing more for now: an idle direction holds no pipe
      return;
    }
    if (errno == EINTR) continue;
    relay_fail(c, i, errno);
    return;
  }
}

static void finish(conn *c) {
  relay_thread *t = c->t;
  for (int i = 0; i < 2; i++) {
    // DEL allocates nothing and cannot fail for a descriptor registered here (`armed`); it must
    // come before close(): Node may not have closed its own descriptor of the socket yet, and
    // while one is open the registration (pointing at this conn) would outlive the close.
    if (c->s[i].armed) (void)epoll_ctl(t->ep, EPOLL_CTL_DEL, c->s[i].fd, NULL);
    c->s[i].armed = 0;
    close(c->s[i].fd);
    c->s[i].fd = -1;
    release_pipe(t, &c->d[i]);
    free(c->d[i].pend);
    c->d[i].pend = NULL;
    c->d[i].pend_len = 0;
  }
  relay_timer_stop(c);
  if (c->tls) tls_free(c->tls);  // the keys are wiped; the state itself goes with the conn
  if (c->ssh) ssh_free(c->ssh);
}

static void on_event(conn *c, int i, uint32_t events) {
  // A wait after one side's end is over (linger.c).
  if (i == SIDE_LINGER) return relay_linger_fired(c);
  dir_t *to = &c->d[1 - i];
  // Writable, or hung up or failed (the write then says why): what the other side said to this one.
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && (to->pend_len || to->in_pipe)) {
    if (flush(c, 1 - i)) {
      pass_fin(c, 1 - i);
      if (!c->done) pump(c, 1 - i);
    }
  }
  dir_t *from = &c->d[i];
  if (!c->done && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && may_read(c, i)) pump(c, i);
  if (!c->done && (events & EPOLLERR)) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->s[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) relay_fail(c, i, err);
  }
  if (!c->done && (events & EPOLLHUP) && from->eof && !(c->ssh && i == 1)) {
    // Gone both ways (a reset, or our FIN answered): nothing more can be said to this side. (An SSH
    // session's desktop gone is not its end: the channel's close with the client is still to come.)
    if (to->pend_len || to->in_pipe) relay_fail(c, i, EPIPE);
    else c->done = true;
  }
  if (!c->done) arm(c, 0);
  if (!c->done) arm(c, 1);
}

static void unlink_request(conn *c) {
  if (c->rq_prev) c->rq_prev->rq_next = c->rq_next;
  else c->t->requests = c->rq_next;
  if (c->rq_next) c->rq_next->rq_prev = c->rq_prev;
  c->rq_prev = c->rq_next = NULL;
  c->rq_queued = false;
}

// Queue the ends for JavaScript. Room was reserved when each session was added, so this allocates
// nothing; the sessions that did not fit anyway (a bug, then) are returned and tried again.
static conn *publish(conn *done_list) {
  conn *left = NULL;
  pthread_mutex_lock(&sr_lock);
  bool was_empty = sr_nended == 0;
  for (conn *c = done_list, *next; c; c = next) {
    next = c->next_done;
    // From here JavaScript may free it: no close request may stay on a list, none may be added.
    if (c->rq_queued) unlink_request(c);
    if (sr_nended + 6 > sr_capended) {
      c->next_done = left;
      left = c;
      continue;
    }
    double *r = sr_ended + sr_nended;
    r[0] = conn_id(c);
    r[1] = c->close_requested ? END_REQUESTED : c->err_side >= 0 ? END_ERROR : END_CLOSED;
    r[2] = c->err_side >= 0 ? c->err_side : c->first_eof;
    r[3] = c->err;
    r[4] = (double)__atomic_load_n(&c->d[0].bytes, __ATOMIC_RELAXED);
    r[5] = (double)__atomic_load_n(&c->d[1].bytes, __ATOMIC_RELAXED);
    c->published = true;
    sr_nended += 6;
    sr_live--;
  }
  // Under the lock: init may swap `notify`. The call only queues (the queue is unbounded) and fails
  // only while Node shuts the environment down, when no one is left to hear the ends.
  if (was_empty && sr_nended) (void)napi_call_threadsafe_function(sr_notify, NULL, napi_tsfn_nonblocking);
  pthread_mutex_unlock(&sr_lock);
  return left;
}

void relay_wake(relay_thread *t) {
  uint64_t one = 1;
  // Fails only when the counter is at its maximum, i.e. a wake-up is pending already.
  ssize_t r = write(t->evfd, &one, sizeof one);
  (void)r;
}

// The eventfd fired: register the sessions JavaScript handed over, then close those it asked to.
// Both lists are taken under one hold of the lock, adds first: a close request is always made after
// its session was added, so its session is registered by the time the request is looked at.
static void take_lists(relay_thread *t, conn **done_list) {
  uint64_t v;
  ssize_t r = read(t->evfd, &v, sizeof v);  // resets the counter; the lists are what count
  (void)r;
  pthread_mutex_lock(&sr_lock);
  conn *adds = t->adds, *closes = t->requests;
  t->adds = t->requests = NULL;
  // Off the list: a request is never made twice (close_requested), and publish must not unlink it.
  for (conn *c = closes; c; c = c->rq_next) c->rq_queued = false;
  pthread_mutex_unlock(&sr_lock);
  for (conn *c = adds, *next; c; c = next) {
    next = c->next_add;
    arm(c, 0);
    if (!c->done) arm(c, 1);
    if (c->done) {
      finish(c);
      c->next_done = *done_list;
      *done_list = c;
    }
  }
  for (conn *c = closes, *next; c; c = next) {
    next = c->rq_next;
    if (c->done) continue;  // ended on its own earlier in this batch
    if (c->tls && c->tls->websocket) ws_send_parting(c);  // a revoke says why, as the JavaScript relay does
    c->done = true;
    finish(c);
    c->next_done = *done_list;
    *done_list = c;
  }
}

void *relay_run(void *arg) {
  relay_thread *t = arg;
  struct epoll_event evs[256];
  for (;;) {
    // Ends that found no room wait here and are tried again soon (cannot happen: add reserves room).
    int n = epoll_wait(t->ep, evs, 256, t->unpublished ? 10 : -1);
    if (n < 0) n = 0;  // EINTR
    conn *done_list = t->unpublished;
    t->unpublished = NULL;
    for (int k = 0; k < n; k++) {
      if (evs[k].data.ptr == NULL) {
        take_lists(t, &done_list);
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
    if (done_list) t->unpublished = publish(done_list);
  }
  return NULL;
}
