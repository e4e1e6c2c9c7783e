// The native sessions of the HTTPS tunnel (ADR 0032): the client side speaks TLS 1.3 records. Node did
// the handshake and read the grant token; it handed over the descriptor with the application traffic
// keys and the record numbers both sides reached. Here each record from the client is opened (AES-GCM,
// in place) and its plaintext relayed to the workstation; each read from the workstation is sealed
// into records of at most 16 KiB. Only application data and close_notify are accepted from the client:
// anything else (a forged or reordered record, a KeyUpdate, another alert) ends the session.
#include "relay.h"

#define TYPE_ALERT 21
#define TYPE_HANDSHAKE 22
#define TYPE_APPLICATION_DATA 23

// Fetched once: given the legacy EVP_aes_*_gcm() objects, OpenSSL 3 looks the algorithm up in its
// provider store at every init, that is at every record.
static EVP_CIPHER *fetched[2];
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static void fetch_ciphers(void) {
  fetched[0] = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
  fetched[1] = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

const EVP_CIPHER *tls_cipher(int key_len) {
  pthread_once(&fetch_once, fetch_ciphers);
  return fetched[key_len == 32];
}

// The context is the relay thread's, keyed per record; its cipher is set again only when it changes.
static const EVP_CIPHER *cipher_unless_set(EVP_CIPHER_CTX *ctx, const tls_state *s) {
  return EVP_CIPHER_CTX_get0_cipher(ctx) == s->cipher ? NULL : s->cipher;
}

// The per-record nonce: the static IV XOR the 64-bit record sequence number (RFC 8446 section 5.3).
static void nonce_for(const tls_keys *k, uint8_t nonce[12]) {
  memcpy(nonce, k->iv, 12);
  for (int b = 0; b < 8; b++) nonce[11 - b] ^= (uint8_t)(k->seq >> (8 * b));
}

// One record of content `type` whose plaintext is `head` then `in` (a WebSocket frame header, then its
// payload: sealed without copying them together).
static ssize_t seal_record(EVP_CIPHER_CTX *ctx, tls_state *s, uint8_t type, const uint8_t *head, size_t head_len, const uint8_t *in, size_t n, uint8_t *out) {
  size_t plain = head_len + n, len = plain + 1 + 16;
  uint8_t nonce[12];
  int m;
  out[0] = TYPE_APPLICATION_DATA;  // every protected record says "application data" outside
  out[1] = 3;
  out[2] = 3;
  out[3] = (uint8_t)(len >> 8);
  out[4] = (uint8_t)len;
  nonce_for(&s->tx, nonce);
  if (EVP_EncryptInit_ex(ctx, cipher_unless_set(ctx, s), NULL, s->tx.key, nonce) != 1) return -1;
  if (EVP_EncryptUpdate(ctx, NULL, &m, out, 5) != 1) return -1;  // the header is the additional data
  if (head_len && EVP_EncryptUpdate(ctx, out + 5, &m, head, (int)head_len) != 1) return -1;
  if (n && EVP_EncryptUpdate(ctx, out + 5 + head_len, &m, in, (int)n) != 1) return -1;
  if (EVP_EncryptUpdate(ctx, out + 5 + plain, &m, &type, 1) != 1) return -1;
  if (EVP_EncryptFinal_ex(ctx, out + 6 + plain, &m) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 6 + plain) != 1) return -1;
  s->tx.seq++;
  return (ssize_t)(5 + len);
}

ssize_t tls_seal(EVP_CIPHER_CTX *ctx, tls_state *s, uint8_t type, const uint8_t *in, size_t n, uint8_t *out) {
  return seal_record(ctx, s, type, NULL, 0, in, n, out);
}

ssize_t tls_seal_parts(EVP_CIPHER_CTX *ctx, tls_state *s, const uint8_t *head, size_t head_len, const uint8_t *in, size_t n, uint8_t *out) {
  return seal_record(ctx, s, TYPE_APPLICATION_DATA, head, head_len, in, n, out);
}

// Open the record at `rec` (`len` bytes, header included) in place: its inner content type, with its
// plaintext at *plain, or -1 when it is not this connection's next record.
static int tls_open(EVP_CIPHER_CTX *ctx, tls_state *s, uint8_t *rec, size_t len, uint8_t **plain, size_t *plain_len) {
  size_t ct = len - 5 - 16;
  uint8_t nonce[12];
  int m;
  nonce_for(&s->rx, nonce);
  if (EVP_DecryptInit_ex(ctx, cipher_unless_set(ctx, s), NULL, s->rx.key, nonce) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, NULL, &m, rec, 5) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, rec + 5, &m, rec + 5, (int)ct) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, rec + 5 + ct) != 1) return -1;
  if (EVP_DecryptFinal_ex(ctx, rec + 5 + ct, &m) != 1) return -1;  // the tag did not verify
  s->rx.seq++;
  size_t n = ct;
  while (n > 0 && rec[5 + n - 1] == 0) n--;  // zero padding after the content type
  if (n == 0) return -1;
  *plain = rec + 5;
  *plain_len = n - 1;
  return rec[5 + n - 1];
}

// Keep what the destination did not take of `data` for later (the direction then waits for EPOLLOUT).
static bool keep(conn *c, dir_t *d, const uint8_t *data, size_t n) {
  d->pend = relay_malloc(n);
  if (!d->pend) {
    relay_fail(c, SIDE_RELAY, ENOMEM);
    return false;
  }
  memcpy(d->pend, data, n);
  d->pend_len = (uint32_t)n;
  d->pend_off = 0;
  return true;
}

bool relay_deliver(conn *c, int i, const uint8_t *data, size_t n) {
  if (n == 0) return true;
  ssize_t m = send(c->s[1 - i].fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (m < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      relay_fail(c, 1 - i, errno);
      return false;
    }
    m = 0;
  }
  if ((size_t)m == n) return true;
  keep(c, &c->d[i], data + m, n - (size_t)m);
  return false;
}

bool relay_keep_partial(conn *c, uint8_t **partial, uint32_t *partial_len, const uint8_t *from, size_t rest, size_t cap) {
  if (rest) {
    if (!*partial && !(*partial = relay_malloc(cap))) {
      relay_fail(c, SIDE_RELAY, ENOMEM);
      return false;
    }
    memmove(*partial, from, rest);
  } else if (*partial) {
    free(*partial);  // an idle session holds no record buffer
    *partial = NULL;
  }
  *partial_len = (uint32_t)rest;
  return true;
}

bool relay_append(conn *c, int i, const uint8_t *data, size_t n) {
  dir_t *d = &c->d[i];
  if (!d->pend_len) return relay_deliver(c, i, data, n) || !c->done;
  char *grown = relay_malloc((size_t)d->pend_len + n);
  if (!grown) {
    relay_fail(c, SIDE_RELAY, ENOMEM);
    return false;
  }
  memcpy(grown, d->pend + d->pend_off, d->pend_len);
  memcpy(grown + d->pend_len, data, n);
  free(d->pend);
  d->pend = grown;
  d->pend_off = 0;
  d->pend_len += (uint32_t)n;
  return true;
}

// The client's records → plaintext to the workstation.
static void pump_from_client(conn *c) {
  relay_thread *t = c->t;
  tls_state *s = c->tls;
  dir_t *d = &c->d[0];
  uint8_t *buf = (uint8_t *)t->buf;
  for (int round = 0; round < ROUNDS && !c->done && !d->eof; round++) {
    if (d->pend_len) return;
    size_t have = s->partial_len;
    if (have) memcpy(buf, s->partial, have);
    ssize_t n = recv(c->s[0].fd, buf + have, READ_BUF - have, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) relay_fail(c, 0, errno);
      return;
    }
    if (n == 0) {
      // A FIN without close_notify: relayed as an end all the same, unless it cut a record.
      if (have) relay_fail(c, 0, EPROTO);
      else relay_note_eof(c, 0);
      if (s->websocket) ws_linger(c);
      return;
    }
    size_t total = have + (size_t)n, off = 0, plain = 0;
    bool closing = false;
    while (!closing && total - off >= 5) {
      size_t len = ((size_t)buf[off + 3] << 8) | buf[off + 4];
      if (buf[off] != TYPE_APPLICATION_DATA || buf[off + 1] != 3 || len < 17 || len > TLS_MAX_CIPHERTEXT) {
        relay_fail(c, 0, EPROTO);
        return;
      }
      if (total - off < 5 + len) break;
      uint8_t *p;
      size_t pl;
      int type = tls_open(t->cipher, s, buf + off, 5 + len, &p, &pl);
      if (type == TYPE_APPLICATION_DATA) {
        memmove(buf + plain, p, pl);  // compact the plaintexts at the front: one send for the read
        plain += pl;
      } else if (type == TYPE_ALERT && pl == 2 && p[1] == 0) {
        closing = true;  // close_notify: what came before it still goes to the workstation
      } else {
        // A bad tag, a KeyUpdate or ticket (handshake), another alert: not something to relay.
        relay_fail(c, 0, type < 0 ? EBADMSG : type == TYPE_ALERT ? ECONNRESET : EPROTO);
        return;
      }
      off += 5 + len;
    }
    if (!relay_keep_partial(c, &s->partial, &s->partial_len, buf + off, closing ? 0 : total - off, 5 + TLS_MAX_CIPHERTEXT)) return;
    if (s->websocket) {
      bool ws_closing = false;
      ssize_t payload = ws_unframe(c, buf, plain, &ws_closing);
      if (payload < 0) return;  // ended (a protocol error): the relay said why in a close frame
      plain = (size_t)payload;
      closing = closing || ws_closing;
    }
    __atomic_add_fetch(&d->bytes, (uint64_t)plain, __ATOMIC_RELAXED);
    bool sent = relay_deliver(c, 0, buf, plain);
    if (closing) {
      relay_note_eof(c, 0);
      if (s->websocket) ws_linger(c);
      return;
    }
    if (!sent || (size_t)n < READ_BUF - have) return;  // full destination, or the socket is drained
  }
}

// The workstation's bytes → records to the client.
static void pump_to_client(conn *c) {
  relay_thread *t = c->t;
  dir_t *d = &c->d[1];
  bool ws = c->tls->websocket;
  size_t want = ws ? WS_READ : READ_BUF, per_record = ws ? WS_MAX_PAYLOAD : TLS_MAX_PLAIN;
  for (int round = 0; round < ROUNDS && !c->done && !d->eof; round++) {
    if (d->pend_len) return;
    ssize_t n = recv(c->s[1].fd, t->buf, want, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) relay_fail(c, 1, errno);
      return;
    }
    if (n == 0) {
      relay_note_eof(c, 1);
      return;
    }
    __atomic_add_fetch(&d->bytes, (uint64_t)n, __ATOMIC_RELAXED);
    size_t sealed = 0;
    for (size_t off = 0; off < (size_t)n; off += per_record) {
      size_t chunk = (size_t)n - off < per_record ? (size_t)n - off : per_record;
      const uint8_t *from = (uint8_t *)t->buf + off;
      ssize_t r = ws ? ws_seal_binary(c, from, chunk, t->sealed + sealed) : tls_seal(t->cipher, c->tls, TYPE_APPLICATION_DATA, from, chunk, t->sealed + sealed);
      if (r < 0) {
        relay_fail(c, SIDE_RELAY, EIO);
        return;
      }
      sealed += (size_t)r;
    }
    if (!relay_deliver(c, 1, t->sealed, sealed) || (size_t)n < want) return;
  }
}
_Static_assert(WS_READ + (WS_READ / WS_MAX_PAYLOAD) * (TLS_OVERHEAD + 4) <= READ_BUF + (READ_BUF / TLS_MAX_PLAIN + 1) * TLS_OVERHEAD, "a WebSocket read's records fit binding.c's sealed buffer");

void tls_pump(conn *c, int i) {
  if (i == 0) pump_from_client(c);
  else pump_to_client(c);
}

// The workstation ended its side: tell the client in its records before the FIN (best effort: the
// socket has room, nothing else is pending when a FIN is passed on). A WebSocket client first reads a
// close frame, as from the JavaScript relay.
void tls_send_close_notify(conn *c) {
  if (c->tls->websocket) ws_send_target_closed(c);
  uint8_t alert[2] = {1, 0}, rec[2 + TLS_OVERHEAD];
  ssize_t r = tls_seal(c->t->cipher, c->tls, TYPE_ALERT, alert, sizeof alert, rec);
  if (r > 0) (void)send(c->s[0].fd, rec, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// The client side speaks TLS 1.3 records (the tunnel's native mode): `params` (TLS_PARAMS_LEN bytes) is
// the key length (16 or 32: AES-128-GCM or AES-256-GCM), then the client's key, IV and next record
// number (little-endian), then ours; `hello` (the gateway's answer to the token) is sealed at once as
// the first record to the client. False with errno set when the parameters are not that.
bool tls_setup(conn *c, const uint8_t *params, size_t params_len, const uint8_t *hello, size_t hello_len) {
  bool websocket = params_len == TLS_PARAMS_LEN + 1 && params[TLS_PARAMS_LEN] == 1;
  if ((params_len != TLS_PARAMS_LEN && !websocket) || (params[0] != 16 && params[0] != 32) || hello_len > TLS_MAX_PLAIN) return errno = EINVAL, false;
  tls_state *s = c->tls = relay_calloc(1, sizeof *s);
  if (!s) return false;
  s->websocket = websocket;
  s->cipher = tls_cipher(params[0]);
  if (!s->cipher) return errno = ENOSYS, false;
  tls_keys *k[2] = {&s->rx, &s->tx};
  const uint8_t *p = params + 1;
  for (int i = 0; i < 2; i++, p += 52) {
    memcpy(k[i]->key, p, params[0]);
    memcpy(k[i]->iv, p + 32, 12);
    k[i]->seq = 0;
    for (int b = 7; b >= 0; b--) k[i]->seq = k[i]->seq << 8 | p[44 + b];
  }
  if (!hello_len) return true;
  uint8_t *rec = relay_malloc(hello_len + TLS_OVERHEAD);
  c->d[1].pend = (char *)rec;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  ssize_t r = rec && ctx ? tls_seal(ctx, s, 23, hello, hello_len, rec) : -1;
  EVP_CIPHER_CTX_free(ctx);
  if (r < 0) return errno = rec && ctx ? EIO : ENOMEM, false;
  c->d[1].pend_len = (uint32_t)r;
  return true;
}

void tls_free(tls_state *s) {
  free(s->partial);
  s->partial = NULL;
  s->partial_len = 0;
  explicit_bzero(&s->rx, sizeof s->rx);
  explicit_bzero(&s->tx, sizeof s->tx);
}
