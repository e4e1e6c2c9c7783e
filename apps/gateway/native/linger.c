// A session's one timer (relay.h `linger`): the bounded waits after one side of a session has ended.
//
// - The SSH jump host: after the channel's close, the client has a moment to hang up (ssh_relay.c).
// - The WebSocket path: after the client's close, the workstation has 5 s to end its side (ws_relay.c).
// - Every session otherwise (port forward, RDP token, TLS SNI, the tunnel's native mode, an SSH channel
//   after one EOF, a WebSocket session whose workstation ended first): once one side's end came in
//   (FIN, close_notify, the channel's EOF), the session ends when
//   nothing has moved the other way for `sr_half_close_seconds`, like HAProxy's `timeout client-fin` and
//   `server-fin`. A half-close is relayed, so a client that ends its upload still reads the whole answer;
//   what is bounded is a side that keeps a finished session open and says nothing (the broker would
//   count the desktop as in use, and a power plan would never stop it).
//
// The idle bound is checked when the timer fires, not moved on every read: the byte path pays nothing,
// and a session ends between one and two bounds after its last byte. A byte read, or bytes that waited
// for a slow side going out, count as movement.
#include "relay.h"

int sr_half_close_seconds = 60;

bool relay_timer_start(conn *c, int seconds, enum linger_kind kind) {
  side_t *l = &c->linger;
  struct itimerspec when = {.it_value = {.tv_sec = seconds}};
  l->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
  if (l->fd >= 0 && timerfd_settime(l->fd, 0, &when, NULL) == 0 && relay_epoll_ctl(c->t->ep, EPOLL_CTL_ADD, l->fd, &ev) == 0) {
    l->armed = EPOLLIN;
    c->linger_kind = (uint8_t)kind;
    return true;
  }
  return false;  // a descriptor made anyway is closed by relay_timer_stop
}

void relay_timer_stop(conn *c) {
  side_t *l = &c->linger;
  c->linger_kind = LINGER_NONE;
  if (l->fd < 0) return;
  if (l->armed) (void)epoll_ctl(c->t->ep, EPOLL_CTL_DEL, l->fd, NULL);
  close(l->fd);
  l->fd = -1;
  l->armed = 0;
}

static uint64_t moved(const conn *c) {
  return __atomic_load_n(&c->d[0].bytes, __ATOMIC_RELAXED) + __atomic_load_n(&c->d[1].bytes, __ATOMIC_RELAXED);
}
static uint32_t pending(const conn *c) {
  return c->d[0].pend_len + c->d[0].in_pipe + c->d[1].pend_len + c->d[1].in_pipe;
}

// One side's end came in (relay_note_eof; an SSH client's channel EOF) and the other side goes on: bound
// its silence. A fixed wait already running (after an SSH channel's close) is left as it is.
void relay_half_closed(conn *c) {
  int seconds = __atomic_load_n(&sr_half_close_seconds, __ATOMIC_RELAXED);
  if (seconds <= 0 || c->done || c->linger.fd >= 0) return;
  c->linger_mark = moved(c);
  c->linger_pending = pending(c);
  if (!relay_timer_start(c, seconds, LINGER_IDLE)) relay_timer_stop(c);  // no timer (out of descriptors): the session waits as a plain TCP relay would
}

static void idle_check(conn *c) {
  uint64_t now = moved(c);
  uint32_t waiting = pending(c);
  if (now == c->linger_mark && waiting == c->linger_pending) {
    // Reported as the end of the side that ended first; an SSH client is told why in a DISCONNECT.
    if (c->ssh) return ssh_linger_expired(c);
    c->done = true;
    return;
  }
  c->linger_mark = now;
  c->linger_pending = waiting;
  int seconds = __atomic_load_n(&sr_half_close_seconds, __ATOMIC_RELAXED);
  struct itimerspec when = {.it_value = {.tv_sec = seconds > 0 ? seconds : 1}};
  if (timerfd_settime(c->linger.fd, 0, &when, NULL) < 0) relay_timer_stop(c);
}

void relay_linger_fired(conn *c) {
  // Take the expiry (the timer is level-triggered). Nothing to take: the event was a timer's that this
  // batch stopped and made again (an SSH channel's close replacing the idle bound), not this one's.
  uint64_t ticks;
  if (read(c->linger.fd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks) return;
  if (c->linger_kind == LINGER_IDLE) return idle_check(c);
  if (c->ssh) return ssh_linger_expired(c);
  ws_linger_expired(c);
}
