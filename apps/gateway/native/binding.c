// The Node-API binding of the native relay (ADR 0011): init, add, close, bytes, takeEnded, stats, halfClose.
// Every function runs on the JavaScript thread; the relay threads are in relay_thread.c.
#include "relay.h"


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
  // Fails only while the environment shuts down; an exception of the callback is Node's to report.
  if (napi_get_undefined(env, &undefined) != napi_ok) return;
  (void)napi_call_function(env, undefined, js_cb, 0, NULL, NULL);
}

// init(onEnded, threads): start the relay threads; onEnded() is called when ends wait in takeEnded().
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (sr_nthreads) {
    // Loaded again in the same process (a test runner re-importing modules): the threads stay, the
    // newest caller hears the ends (records of sessions it never added are skipped by it).
    napi_threadsafe_function fresh;
    CHECK(napi_create_string_utf8(env, "stagedoor-relay", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &fresh));
    CHECK(napi_unref_threadsafe_function(env, fresh));
    pthread_mutex_lock(&sr_lock);
    napi_threadsafe_function old = sr_notify;
    sr_notify = fresh;
    bool pending = sr_nended > 0;
    pthread_mutex_unlock(&sr_lock);
    napi_release_threadsafe_function(old, napi_tsfn_release);
    if (pending) napi_call_threadsafe_function(fresh, NULL, napi_tsfn_nonblocking);
    return NULL;
  }
  int32_t want = 1;
  if (argc > 1) CHECK(napi_get_value_int32(env, argv[1], &want));
  if (want < 1) want = 1;
  if (want > MAX_THREADS) want = MAX_THREADS;
  CHECK(napi_create_string_utf8(env, "stagedoor-relay", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &sr_notify));
  CHECK(napi_unref_threadsafe_function(env, sr_notify));  // the relay never keeps the process alive
  for (int i = 0; i < want; i++) {
    relay_thread *t = &sr_threads[i];
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->buf = relay_malloc(READ_BUF);
    t->sealed = relay_malloc(READ_BUF + (READ_BUF / TLS_MAX_PLAIN + 1) * TLS_OVERHEAD);
    t->cipher = EVP_CIPHER_CTX_new();
    if (t->ep < 0 || t->evfd < 0 || !t->buf || !t->sealed || !t->cipher) return throw_errno(env, "stagedoor native relay: start", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (relay_epoll_ctl(t->ep, EPOLL_CTL_ADD, t->evfd, &ev) < 0) return throw_errno(env, "stagedoor native relay: start", errno);
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc) return throw_errno(env, "stagedoor native relay: thread", rc);
    rc = pthread_attr_setstacksize(&attr, 256 * 1024);
    if (!rc) rc = pthread_create(&t->th, &attr, relay_run, t);
    pthread_attr_destroy(&attr);
    if (rc) return throw_errno(env, "stagedoor native relay: thread", rc);
    pthread_detach(t->th);
    sr_nthreads = i + 1;
  }
  return NULL;
}

static int dup_socket(int fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (d < 0) return -1;
  int fl = fcntl(d, F_GETFL);
  if (fl < 0 || fcntl(d, F_SETFL, fl | O_NONBLOCK) < 0) {
    int err = errno;
    close(d);
    errno = err;
    return -1;
  }
  return d;
}

// Room in sr_ended for the end of every session not freed yet, one more included (under sr_lock).
static bool reserve_end(void) {
  size_t need = sr_nended + 6 * ((size_t)sr_live + 1);
  if (need <= sr_capended) return true;
  size_t cap = sr_capended ? sr_capended * 2 : 6 * 256;
  if (cap < need) cap = need;
  double *grown = relay_realloc(sr_ended, cap * sizeof *sr_ended);
  if (!grown) return false;
  sr_ended = grown;
  sr_capended = cap;
  return true;
}

static void discard(conn *c) {
  for (int i = 0; i < 2; i++)
    if (c->s[i].fd >= 0) close(c->s[i].fd);
  free(c->d[0].pend);
  free(c->d[1].pend);
  if (c->tls) tls_free(c->tls);
  free(c->tls);
  if (c->ssh) ssh_free(c->ssh);
  free(c->ssh);
  free(c->parting);
  free(c);
}

static bool buffer_arg(napi_env env, napi_value v, void **data, size_t *len) {
  bool is_buffer = false;
  if (napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer) return false;
  return napi_get_buffer_info(env, v, data, len) == napi_ok;
}

// add(clientFd, targetFd, initial?: Buffer, tlsParams?: Buffer, hello?: Buffer, sshParams?: Buffer) → id
// (tlsParams one byte longer, ending in 1: the records carry WebSocket frames, ws_relay.c)
// (tls_setup in tls_relay.c: the TLS ones; ssh_setup in ssh_relay.c: the SSH one; at most one of the two). The descriptors are duplicated: the caller closes its own.
// Everything that can fail for want of memory or descriptors fails here, before the relay thread
// sees the session: the caller then keeps relaying it in JavaScript. The relay thread registers it
// with epoll (so that only that thread ever touches a session's state); a failure there ends the
// session and reports it.
static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6], out;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!sr_nthreads) {
    napi_throw_error(env, NULL, "stagedoor native relay: not started");
    return NULL;
  }
  int32_t fds[2];
  CHECK(napi_get_value_int32(env, argv[0], &fds[0]));
  CHECK(napi_get_value_int32(env, argv[1], &fds[1]));
  void *initial = NULL;
  size_t initial_len = 0;
  if (argc > 2) (void)buffer_arg(env, argv[2], &initial, &initial_len);
  void *tls_params = NULL, *hello = NULL;
  size_t tls_params_len = 0, hello_len = 0;
  if (argc > 3) (void)buffer_arg(env, argv[3], &tls_params, &tls_params_len);
  if (argc > 4) (void)buffer_arg(env, argv[4], &hello, &hello_len);
  void *ssh_params = NULL;
  size_t ssh_params_len = 0;
  if (argc > 5) (void)buffer_arg(env, argv[5], &ssh_params, &ssh_params_len);
  if (tls_params && ssh_params) return throw_errno(env, "stagedoor native relay: add", EINVAL);
  if (initial_len > UINT32_MAX) return throw_errno(env, "stagedoor native relay: add", EINVAL);
  conn *c = relay_calloc(1, sizeof *c);
  if (!c) return throw_errno(env, "stagedoor native relay: add", ENOMEM);
  c->first_eof = c->err_side = -1;
  c->linger = (side_t){.c = c, .fd = -1, .idx = SIDE_LINGER};
  for (int i = 0; i < 2; i++) {
    c->s[i].c = c;
    c->s[i].idx = (uint8_t)i;
    c->s[i].fd = -1;
    c->d[i].pipe_r = c->d[i].pipe_w = -1;
  }
  for (int i = 0; i < 2; i++) {
    c->s[i].fd = dup_socket(fds[i]);
    if (c->s[i].fd < 0) {
      int err = errno;
      discard(c);
      return throw_errno(env, "stagedoor native relay: add", err);
    }
  }
  if (tls_params && !tls_setup(c, tls_params, tls_params_len, hello, hello_len)) {
    int err = errno;
    discard(c);
    return throw_errno(env, "stagedoor native relay: add", err);
  }
  if (ssh_params && !ssh_setup(c, ssh_params, ssh_params_len)) {
    int err = errno;
    discard(c);
    return throw_errno(env, "stagedoor native relay: add", err);
  }
  if (initial_len) {
    // Bytes JavaScript read before the relay began (after a PROXY header): the first to go up.
    c->d[0].pend = relay_malloc(initial_len);
    if (!c->d[0].pend) {
      discard(c);
      return throw_errno(env, "stagedoor native relay: add", ENOMEM);
    }
    memcpy(c->d[0].pend, initial, initial_len);
    c->d[0].pend_len = (uint32_t)initial_len;
    c->d[0].bytes = initial_len;
  }
  pthread_mutex_lock(&sr_lock);
  if (!reserve_end()) {
    pthread_mutex_unlock(&sr_lock);
    discard(c);
    return throw_errno(env, "stagedoor native relay: add", ENOMEM);
  }
  if (sr_nfree) {
    c->index = sr_free_slots[--sr_nfree];
  } else {
    uint32_t cap = sr_nslots ? sr_nslots * 2 : 1024;
    conn **grown = relay_realloc(sr_slots, cap * sizeof *sr_slots);
    if (grown) sr_slots = grown;
    uint32_t *gens = grown ? relay_realloc(sr_slot_gen, cap * sizeof *sr_slot_gen) : NULL;
    if (gens) sr_slot_gen = gens;
    uint32_t *frees = gens ? relay_realloc(sr_free_slots, cap * sizeof *sr_free_slots) : NULL;
    if (frees) sr_free_slots = frees;
    if (!frees) {
      pthread_mutex_unlock(&sr_lock);
      discard(c);
      return throw_errno(env, "stagedoor native relay: add", ENOMEM);
    }
    for (uint32_t k = cap; k > sr_nslots + 1; k--) sr_free_slots[sr_nfree++] = k - 1;
    for (uint32_t k = sr_nslots; k < cap; k++) {
      sr_slots[k] = NULL;
      sr_slot_gen[k] = 0;
    }
    c->index = sr_nslots;
    sr_nslots = cap;
  }
  // Ids are numbers in JavaScript (exact to 2^53): the generation wraps within 20 bits.
  sr_slot_gen[c->index] = sr_slot_gen[c->index] % 0xfffff + 1;
  c->gen = sr_slot_gen[c->index];
  sr_slots[c->index] = c;
  sr_live++;
  relay_thread *t = c->t = &sr_threads[sr_next_thread];
  sr_next_thread = (sr_next_thread + 1) % sr_nthreads;
  c->next_add = t->adds;
  t->adds = c;
  double id = conn_id(c);
  pthread_mutex_unlock(&sr_lock);
  // From here on the relay thread owns the session: it registers it, and it may end at once.
  relay_wake(t);
  CHECK(napi_create_double(env, id, &out));
  return out;
}

static conn *lookup(napi_env env, napi_value v) {
  double id;
  if (napi_get_value_double(env, v, &id) != napi_ok) return NULL;
  uint32_t index = (uint32_t)((uint64_t)id & 0xffffffffu), gen = (uint32_t)((uint64_t)id >> 32);
  conn *c = index < sr_nslots ? sr_slots[index] : NULL;
  return c && c->gen == gen ? c : NULL;
}

// close(id): end the session now (revocation, shutdown). Its end still arrives through takeEnded().
// Allocates nothing: the request is linked through the session itself, so it cannot be lost.
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  // A WebSocket session's close frame (at most 125 bytes of payload): copied before the lock, and left
  // out when there is no memory for it (the session is closed all the same).
  void *frame = NULL;
  size_t frame_len = 0;
  uint8_t *parting = NULL;
  if (argc > 1 && buffer_arg(env, argv[1], &frame, &frame_len) && frame_len > 0 && frame_len <= 4 + 125 && (parting = relay_malloc(frame_len))) memcpy(parting, frame, frame_len);
  pthread_mutex_lock(&sr_lock);
  conn *c = lookup(env, argv[0]);
  relay_thread *t = NULL;
  // A published session has ended already (its end is on its way); asking again changes nothing.
  if (c && !c->close_requested && !c->published) {
    if (parting && c->tls && c->tls->websocket) {
      c->parting = parting;
      c->parting_len = (uint8_t)frame_len;
      parting = NULL;
    }
    c->close_requested = true;
    t = c->t;
    c->rq_prev = NULL;
    c->rq_next = t->requests;
    if (t->requests) t->requests->rq_prev = c;
    t->requests = c;
    c->rq_queued = true;
  }
  pthread_mutex_unlock(&sr_lock);
  free(parting);  // not taken: no such session, or not a WebSocket one
  if (t) relay_wake(t);
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
// If the answer cannot be built, nothing is taken: the records stay queued and the call throws.
static napi_value js_take_ended(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value arr;
  pthread_mutex_lock(&sr_lock);
  size_t n = sr_nended;
  napi_status st = napi_create_array_with_length(env, n, &arr);
  for (size_t k = 0; st == napi_ok && k < n; k++) {
    napi_value v;
    st = napi_create_double(env, sr_ended[k], &v);
    if (st == napi_ok) st = napi_set_element(env, arr, (uint32_t)k, v);
  }
  if (st == napi_ok) {
    for (size_t k = 0; k < n; k += 6) {
      uint32_t index = (uint32_t)((uint64_t)sr_ended[k] & 0xffffffffu);
      conn *c = sr_slots[index];
      sr_slots[index] = NULL;
      sr_free_slots[sr_nfree++] = index;
      free(c->tls);
      free(c->ssh);
      free(c->parting);
      free(c);
    }
    sr_nended = 0;
  }
  pthread_mutex_unlock(&sr_lock);
  if (st != napi_ok) {
    napi_throw_error(env, NULL, "stagedoor native relay: takeEnded failed (the ends stay queued)");
    return NULL;
  }
  return arr;
}

// injectFaults(kind: 'alloc' | 'epoll_ctl', skip, fail): for the tests (apps/gateway/test/native-faults.test.ts):
// the next `skip` allocations (or epoll_ctl calls) of the relay succeed, the `fail` after them fail
// with ENOMEM (ENOSPC). injectFaults(kind, 0, 0) disarms. Nothing else calls it.
static napi_value js_inject_faults(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char kind[16];
  size_t len = 0;
  uint32_t skip = 0, count = 0;
  if (argc < 3 || napi_get_value_string_utf8(env, argv[0], kind, sizeof kind, &len) != napi_ok || napi_get_value_uint32(env, argv[1], &skip) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &count) != napi_ok || (strcmp(kind, "alloc") && strcmp(kind, "epoll_ctl"))) {
    napi_throw_type_error(env, NULL, "injectFaults(kind: 'alloc' | 'epoll_ctl', skip: number, fail: number)");
    return NULL;
  }
  relay_set_fault(strcmp(kind, "alloc") ? FAULT_EPOLL_CTL : FAULT_ALLOC, skip, count);
  return NULL;
}

// halfClose(seconds): how long a half-closed session may stay silent (linger.c); 0 for no bound. Timers
// set from then on take it.
static napi_value js_half_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t seconds = -1;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &seconds) != napi_ok || seconds < 0) {
    napi_throw_type_error(env, NULL, "halfClose(seconds: a whole number ≥ 0)");
    return NULL;
  }
  __atomic_store_n(&sr_half_close_seconds, seconds, __ATOMIC_RELAXED);
  return NULL;
}

// stats() → { live, threads }
static napi_value js_stats(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  pthread_mutex_lock(&sr_lock);
  double l = (double)sr_live;
  pthread_mutex_unlock(&sr_lock);
  CHECK(napi_create_double(env, l, &v));
  CHECK(napi_set_named_property(env, o, "live", v));
  CHECK(napi_create_int32(env, sr_nthreads, &v));
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
      {"halfClose", NULL, js_half_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"injectFaults", NULL, js_inject_faults, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof *props, props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
