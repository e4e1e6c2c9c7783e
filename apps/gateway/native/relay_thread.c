// The relay thread (ADR 0011): a level-triggered epoll loop over the sessions JavaScript handed over.
// recv/send through one buffer per thread for small messages; splice through a pipe from a per-thread
// pool once a direction carries bulk data; a full destination keeps the rest and its source is not
// read until it drains; FIN relayed as shutdown(SHUT_WR) once nothing is pending.
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
  pthread_mutex_lock(&sr_lock);
  was_empty = sr_nended == 0;
  for (conn *c = done_list; c; c = c->next_done) {
    if (sr_nended + 6 > sr_capended) {
      size_t cap = sr_capended ? sr_capended * 2 : 6 * 256;
      double *grown = realloc(sr_ended, cap * sizeof *sr_ended);
      if (!grown) break;  // cannot happen short of exhaustion; the session stays listed as live
      sr_ended = grown;
      sr_capended = cap;
    }
    double *r = sr_ended + sr_nended;
    r[0] = conn_id(c);
    r[1] = c->close_requested ? END_REQUESTED : c->err_side >= 0 ? END_ERROR : END_CLOSED;
    r[2] = c->err_side >= 0 ? c->err_side : c->first_eof;
    r[3] = c->err;
    r[4] = (double)__atomic_load_n(&c->d[0].bytes, __ATOMIC_RELAXED);
    r[5] = (double)__atomic_load_n(&c->d[1].bytes, __ATOMIC_RELAXED);
    sr_nended += 6;
    sr_live--;
  }
  // Under the lock: init may swap `notify` (the call only queues, it never waits for JavaScript).
  if (was_empty && sr_nended) napi_call_threadsafe_function(sr_notify, NULL, napi_tsfn_nonblocking);
  pthread_mutex_unlock(&sr_lock);
}

void *relay_run(void *arg) {
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
        pthread_mutex_lock(&sr_lock);
        for (size_t q = 0; q < t->nreq; q++) {
          uint32_t idx = t->requests[q];
          conn *c = idx < sr_nslots ? sr_slots[idx] : NULL;
          if (c && c->t == t && !c->done && c->close_requested) {
            c->done = true;
            finish(c);
            c->next_done = done_list;
            done_list = c;
          }
        }
        t->nreq = 0;
        pthread_mutex_unlock(&sr_lock);
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

