// The Node-API binding of the native relay (ADR 0011): init, add, close, bytes, takeEnded, stats.
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
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, js_cb, 0, NULL, NULL);
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
  if (argc > 1) napi_get_value_int32(env, argv[1], &want);
  if (want < 1) want = 1;
  if (want > MAX_THREADS) want = MAX_THREADS;
  CHECK(napi_create_string_utf8(env, "stagedoor-relay", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_threadsafe_function(env, argv[0], NULL, name, 0, 1, NULL, NULL, NULL, call_js, &sr_notify));
  CHECK(napi_unref_threadsafe_function(env, sr_notify));  // the relay never keeps the process alive
  for (int i = 0; i < want; i++) {
    relay_thread *t = &sr_threads[i];
    t->ep = epoll_create1(EPOLL_CLOEXEC);
    t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->buf = malloc(READ_BUF);
    if (t->ep < 0 || t->evfd < 0 || !t->buf) return throw_errno(env, "stagedoor native relay: start", errno);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(t->ep, EPOLL_CTL_ADD, t->evfd, &ev);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&t->th, &attr, relay_run, t);
    pthread_attr_destroy(&attr);
    if (rc) return throw_errno(env, "stagedoor native relay: thread", rc);
    pthread_detach(t->th);
    sr_nthreads = i + 1;
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
  if (!sr_nthreads) {
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
  pthread_mutex_lock(&sr_lock);
  if (sr_nfree) {
    c->index = sr_free_slots[--sr_nfree];
  } else {
    uint32_t cap = sr_nslots ? sr_nslots * 2 : 1024;
    conn **grown = realloc(sr_slots, cap * sizeof *sr_slots);
    uint32_t *gens = grown ? realloc(sr_slot_gen, cap * sizeof *sr_slot_gen) : NULL;
    uint32_t *frees = gens ? realloc(sr_free_slots, cap * sizeof *sr_free_slots) : NULL;
    if (grown) sr_slots = grown;
    if (gens) sr_slot_gen = gens;
    if (frees) sr_free_slots = frees;
    if (!frees) {
      pthread_mutex_unlock(&sr_lock);
      close(c->s[0].fd);
      close(c->s[1].fd);
      free(c->d[0].pend);
      free(c);
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
  c->t = &sr_threads[sr_next_thread];
  sr_next_thread = (sr_next_thread + 1) % sr_nthreads;
  pthread_mutex_unlock(&sr_lock);
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
  conn *c = index < sr_nslots ? sr_slots[index] : NULL;
  return c && c->gen == gen ? c : NULL;
}

// close(id): end the session now (revocation, shutdown). Its end still arrives through takeEnded().
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  pthread_mutex_lock(&sr_lock);
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
  pthread_mutex_unlock(&sr_lock);
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
  pthread_mutex_lock(&sr_lock);
  size_t n = sr_nended;
  napi_status st = napi_create_array_with_length(env, n, &arr);
  for (size_t k = 0; st == napi_ok && k < n; k++) {
    napi_value v;
    napi_create_double(env, sr_ended[k], &v);
    napi_set_element(env, arr, (uint32_t)k, v);
    if (k % 6 == 0) {
      uint32_t index = (uint32_t)((uint64_t)sr_ended[k] & 0xffffffffu);
      conn *c = sr_slots[index];
      sr_slots[index] = NULL;
      sr_free_slots[sr_nfree++] = index;
      free(c);
    }
  }
  sr_nended = 0;
  pthread_mutex_unlock(&sr_lock);
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
  };
  napi_define_properties(env, exports, sizeof props / sizeof *props, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
