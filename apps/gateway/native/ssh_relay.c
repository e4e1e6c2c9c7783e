// The native sessions of the SSH jump host (ADR 0033): the client side speaks SSH binary packets
// sealed with AES-GCM (RFC 5647, OpenSSH's aes128-gcm@openssh.com and aes256-gcm@openssh.com). ssh2, in
// JavaScript, did the key exchange and the authentication (the grant token) and read the one
// `direct-tcpip` channel open; it handed over the descriptor with both directions' keys and invocation
// counters and the channel's numbers, windows and packet sizes. Here the relay thread:
//
// - sends the channel open confirmation as its first packet;
// - opens each packet from the client in place: CHANNEL_DATA goes to the workstation, WINDOW_ADJUST
//   lets more of the workstation's bytes go, EOF and CLOSE end the channel the way sshd does;
// - seals what the workstation says into CHANNEL_DATA packets within the client's window and packet size;
// - answers what a jump host refuses as sshd would: a keepalive or other global request that wants a reply
//   gets REQUEST_FAILURE, a channel request CHANNEL_FAILURE, a second channel open OPEN_FAILURE
//   "administratively prohibited"; IGNORE and DEBUG are ignored;
// - answers a key re-exchange (KEXINIT: OpenSSH asks for one after 64 GiB with AES-GCM, or sooner under a
//   `RekeyLimit`) itself, with the gateway's host key (ssh_kex.c); without that material it ends the session;
// - ends the session at anything else: a packet that does not open (tampered, replayed, reordered), a
//   DISCONNECT, a message no jump host expects.
#include "relay.h"

enum {
  MSG_DISCONNECT = 1, MSG_IGNORE = 2, MSG_UNIMPLEMENTED = 3, MSG_DEBUG = 4, MSG_KEXINIT = 20, MSG_NEWKEYS = 21, MSG_KEX_ECDH_INIT = 30,
  MSG_GLOBAL_REQUEST = 80, MSG_REQUEST_SUCCESS = 81, MSG_REQUEST_FAILURE = 82, MSG_CHANNEL_OPEN = 90, MSG_CHANNEL_OPEN_CONFIRMATION = 91,
  MSG_CHANNEL_OPEN_FAILURE = 92, MSG_CHANNEL_WINDOW_ADJUST = 93, MSG_CHANNEL_DATA = 94, MSG_CHANNEL_EOF = 96,
  MSG_CHANNEL_CLOSE = 97, MSG_CHANNEL_REQUEST = 98, MSG_CHANNEL_FAILURE = 100,
};
#define OPEN_ADMINISTRATIVELY_PROHIBITED 1
#define CONTROL_MAX 256  // the longest control packet payload we send
#define LINGER_SECONDS 2  // how long a client may keep its connection after the channel's close, as in Node's mode
#define DISCONNECT_BY_APPLICATION 11
#define SEALED_CAP (READ_BUF + (READ_BUF / TLS_MAX_PLAIN + 1) * TLS_OVERHEAD)  // binding.c's `sealed`

// The words of ssh-jump-connection.ts for a second forward; a session channel is refused the same way.
static const char SECOND_CHANNEL[] = "one forwarded connection per SSH connection to this gateway: connect again for another (session channels are refused)";

// RFC 5647 section 7.1: the invocation counter (the IV's last 8 bytes) goes up by one per packet.
static void next_iv(uint8_t iv[12]) {
  for (int b = 11; b >= 4; b--)
    if (++iv[b]) break;
}

static const EVP_CIPHER *cipher_unless_set(EVP_CIPHER_CTX *ctx, const ssh_state *s) {
  return EVP_CIPHER_CTX_get0_cipher(ctx) == s->cipher ? NULL : s->cipher;
}

// Seal one packet whose payload is `head` then `body` into `out` (room for the payload + 40); its
// length, or -1. The padding is zeros: under AES-GCM it is encrypted and authenticated like the rest.
static ssize_t seal(EVP_CIPHER_CTX *ctx, ssh_state *s, const uint8_t *head, size_t head_len, const uint8_t *body, size_t body_len, uint8_t *out) {
  static const uint8_t zeros[32];
  size_t n = head_len + body_len, pad = 16 - ((1 + n) % 16);
  if (pad < 4) pad += 16;
  size_t len = 1 + n + pad;
  uint8_t pad_len = (uint8_t)pad;
  int m;
  put32(out, (uint32_t)len);
  if (EVP_EncryptInit_ex(ctx, cipher_unless_set(ctx, s), NULL, s->tx.key, s->tx.iv) != 1) return -1;
  if (EVP_EncryptUpdate(ctx, NULL, &m, out, 4) != 1) return -1;  // the length is the additional data
  uint8_t *p = out + 4;
  if (EVP_EncryptUpdate(ctx, p, &m, &pad_len, 1) != 1) return -1;
  if (head_len && EVP_EncryptUpdate(ctx, p + 1, &m, head, (int)head_len) != 1) return -1;
  if (body_len && EVP_EncryptUpdate(ctx, p + 1 + head_len, &m, body, (int)body_len) != 1) return -1;
  if (EVP_EncryptUpdate(ctx, p + 1 + n, &m, zeros, (int)pad) != 1) return -1;
  if (EVP_EncryptFinal_ex(ctx, p + len, &m) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p + len) != 1) return -1;
  next_iv(s->tx.iv);
  return (ssize_t)(4 + len + 16);
}

// Open the packet at `pkt` (`len` is its packet_length) in place: its message type, with its payload
// at *payload, or -1 when it is not this connection's next packet from the client.
static int open_packet(EVP_CIPHER_CTX *ctx, ssh_state *s, uint8_t *pkt, size_t len, uint8_t **payload, size_t *payload_len) {
  int m;
  if (EVP_DecryptInit_ex(ctx, cipher_unless_set(ctx, s), NULL, s->rx.key, s->rx.iv) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, NULL, &m, pkt, 4) != 1) return -1;
  if (EVP_DecryptUpdate(ctx, pkt + 4, &m, pkt + 4, (int)len) != 1) return -1;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, pkt + 4 + len) != 1) return -1;
  if (EVP_DecryptFinal_ex(ctx, pkt + 4 + len, &m) != 1) return -1;  // the tag did not verify
  next_iv(s->rx.iv);
  size_t pad = pkt[4];
  if (pad < 4 || pad + 2 > len) return -1;  // RFC 4253 6: at least 4 bytes of padding, a message type
  *payload = pkt + 5;
  *payload_len = len - 1 - pad;
  return pkt[5];
}

// A control packet to the client, after whatever is waiting to go to it. False when the session ended.
bool ssh_send(conn *c, const uint8_t *payload, size_t n) {
  uint8_t small[CONTROL_MAX + 40];
  uint8_t *out = n <= CONTROL_MAX ? small : relay_malloc(n + 40);  // a KEXINIT or the exchange's reply
  if (!out) {
    relay_fail(c, SIDE_RELAY, ENOMEM);
    return false;
  }
  ssize_t r = seal(c->t->cipher, c->ssh, payload, n, NULL, 0, out);
  bool ok = r >= 0 && relay_append(c, 1, out, (size_t)r);
  if (r < 0) relay_fail(c, SIDE_RELAY, EIO);
  if (out != small) free(out);
  return ok;
}

static bool send_channel_message(conn *c, uint8_t type) {
  uint8_t p[5] = {type};
  put32(p + 1, c->ssh->peer_id);
  return ssh_send(c, p, sizeof p);
}

// Start the wait for the client's FIN (in place of a half-close bound: the channel is over), once what the
// client sent before its close has reached the workstation (until then the half-close bound watches a
// workstation that takes nothing; ssh_pass_fin starts the wait when it has). Without a timer (no
// descriptor left), the session ends now.
static bool linger(conn *c) {
  if (c->linger_kind == LINGER_FIXED) return true;
  if (c->d[0].pend_len) {
    relay_half_closed(c);
    return true;
  }
  relay_timer_stop(c);
  if (relay_timer_start(c, LINGER_SECONDS, LINGER_FIXED)) return true;
  c->done = true;
  return false;
}

void ssh_linger_expired(conn *c) {
  static const char why[] = "the forwarded connection is over";
  uint8_t p[1 + 4 + 4 + sizeof why - 1 + 4] = {MSG_DISCONNECT}, out[sizeof p + 40];
  put32(p + 1, DISCONNECT_BY_APPLICATION);
  put32(p + 5, sizeof why - 1);
  memcpy(p + 9, why, sizeof why - 1);
  put32(p + 9 + sizeof why - 1, 0);
  c->done = true;
  if (c->d[1].pend_len) return;  // the client is not reading: nothing more is said to it
  ssize_t r = seal(c->t->cipher, c->ssh, p, sizeof p, NULL, 0, out);
  if (r > 0) (void)send(c->s[0].fd, out, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool ssh_setup(conn *c, const uint8_t *params, size_t len) {
  if (len < SSH_PARAMS_LEN || (params[0] != 16 && params[0] != 32)) return errno = EINVAL, false;
  ssh_state *s = c->ssh = relay_calloc(1, sizeof *s);
  if (!s) return false;
  if (len > SSH_PARAMS_LEN && !ssh_rekey_setup(s, params + SSH_PARAMS_LEN, len - SSH_PARAMS_LEN)) return false;
  s->cipher = tls_cipher(params[0]);
  if (!s->cipher) return errno = ENOSYS, false;
  const uint8_t *p = params + 1;
  memcpy(s->rx.key, p, params[0]);
  memcpy(s->rx.iv, p + 32, 12);
  memcpy(s->tx.key, p + 44, params[0]);
  memcpy(s->tx.iv, p + 76, 12);
  p += 88;
  s->peer_id = be32(p);
  s->our_id = be32(p + 4);
  s->peer_window = be32(p + 8);
  s->peer_max_packet = be32(p + 12);
  s->our_window = s->our_window_max = be32(p + 16);
  s->our_max_packet = be32(p + 20);
  if (s->peer_max_packet == 0 || s->our_window_max == 0 || s->our_max_packet == 0) return errno = EINVAL, false;
  // The confirmation ssh2 did not send (RFC 4254 5.1): the first packet to the client.
  uint8_t conf[17] = {MSG_CHANNEL_OPEN_CONFIRMATION};
  put32(conf + 1, s->peer_id);
  put32(conf + 5, s->our_id);
  put32(conf + 9, s->our_window_max);
  put32(conf + 13, s->our_max_packet);
  uint8_t *out = relay_malloc(sizeof conf + 40);
  c->d[1].pend = (char *)out;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  ssize_t r = out && ctx ? seal(ctx, s, conf, sizeof conf, NULL, 0, out) : -1;
  EVP_CIPHER_CTX_free(ctx);
  if (r < 0) return errno = out && ctx ? EIO : ENOMEM, false;
  c->d[1].pend_len = (uint32_t)r;
  return true;
}

// What one opened packet asks for. Returns false when the session ends here; *plain grows by the
// channel data moved to the front of the buffer at `to`.
static bool on_packet(conn *c, const uint8_t *pl, size_t n, uint8_t *to, size_t *plain, bool *eof, bool *close) {
  ssh_state *s = c->ssh;
  const uint8_t *end = pl + n;
  // Between its KEXINIT and its NEWKEYS a client sends only the exchange's and the transport's messages.
  if (s->kex && pl[0] >= MSG_GLOBAL_REQUEST) {
    relay_fail(c, 0, EPROTO);
    return false;
  }
  switch (pl[0]) {
    case MSG_CHANNEL_DATA: {
      ssize_t len = n >= 5 ? string_at(pl + 5, end) : -1;
      // Data after the client's EOF, to another channel, beyond the window we gave: not a client of ours.
      if (len < 0 || be32(pl + 1) != s->our_id || c->d[0].eof || s->close_received || (size_t)len > s->our_window) break;
      s->our_window -= (uint32_t)len;
      memmove(to + *plain, pl + 9, (size_t)len);
      *plain += (size_t)len;
      return true;
    }
    case MSG_CHANNEL_WINDOW_ADJUST:
      if (n < 9 || be32(pl + 1) != s->our_id) break;
      s->peer_window += be32(pl + 5);
      if (s->peer_window > UINT32_MAX) s->peer_window = UINT32_MAX;
      return true;
    case MSG_CHANNEL_EOF:
      if (n < 5 || be32(pl + 1) != s->our_id) break;
      *eof = true;
      return true;
    case MSG_CHANNEL_CLOSE:
      if (n < 5 || be32(pl + 1) != s->our_id || s->close_received) break;
      s->close_received = *close = true;
      return true;
    case MSG_GLOBAL_REQUEST: {  // keepalive@openssh.com, no-more-sessions@openssh.com, tcpip-forward …
      ssize_t name = string_at(pl + 1, end);
      if (name < 0 || (size_t)(end - pl) < 6 + (size_t)name) break;
      if (!pl[5 + name]) return true;  // no reply wanted
      uint8_t fail = MSG_REQUEST_FAILURE;
      return ssh_send(c, &fail, 1);
    }
    case MSG_CHANNEL_REQUEST: {
      ssize_t type = n >= 5 ? string_at(pl + 5, end) : -1;
      if (type < 0 || (size_t)(end - pl) < 10 + (size_t)type || be32(pl + 1) != s->our_id) break;
      return !pl[9 + type] || send_channel_message(c, MSG_CHANNEL_FAILURE);
    }
    case MSG_CHANNEL_OPEN: {
      ssize_t type = string_at(pl + 1, end);
      if (type < 0 || (size_t)(end - pl) < 9 + (size_t)type) break;
      uint8_t p[1 + 4 + 4 + 4 + sizeof SECOND_CHANNEL - 1 + 4] = {MSG_CHANNEL_OPEN_FAILURE};
      put32(p + 1, be32(pl + 5 + type));  // the client's number for the channel it asked for
      put32(p + 5, OPEN_ADMINISTRATIVELY_PROHIBITED);
      put32(p + 9, sizeof SECOND_CHANNEL - 1);
      memcpy(p + 13, SECOND_CHANNEL, sizeof SECOND_CHANNEL - 1);
      put32(p + 13 + sizeof SECOND_CHANNEL - 1, 0);  // no language tag
      return ssh_send(c, p, sizeof p);
    }
    case MSG_IGNORE:
    case MSG_DEBUG:
    case MSG_UNIMPLEMENTED:
    case MSG_REQUEST_SUCCESS:  // the answer to a keepalive ssh2 sent before the handoff
    case MSG_REQUEST_FAILURE:
      return true;
    case MSG_DISCONNECT:  // the client is going: nothing more is said to it
      if (c->first_eof < 0) c->first_eof = 0;
      c->done = true;
      return false;
    case MSG_KEXINIT:
      if (s->rekey && !s->kex) return ssh_kex_init(c, pl, n);
      relay_fail(c, 0, ENOTSUP);  // no material for it (ssh2's internals moved), or a second one at once
      return false;
    case MSG_KEX_ECDH_INIT:
      if (!s->kex) break;
      return ssh_kex_ecdh(c, pl, n);
    case MSG_NEWKEYS:
      if (!s->kex) break;
      return ssh_kex_newkeys(c);
  }
  relay_fail(c, 0, EPROTO);
  return false;
}

// Grant the window again once half of it is used, as OpenSSH does (bulk data never waits on it), but only
// once the workstation has taken all it was sent: the client can then have at most one window of data
// waiting here, however slow the workstation. Not while our key exchange holds what goes to the client.
// False when the session ended.
static bool grant_window(conn *c) {
  ssh_state *s = c->ssh;
  if (s->our_window >= s->our_window_max / 2 || ssh_tx_paused(s) || c->d[0].pend_len || s->close_received) return true;
  uint8_t adjust[9] = {MSG_CHANNEL_WINDOW_ADJUST};
  put32(adjust + 1, s->peer_id);
  put32(adjust + 5, s->our_window_max - s->our_window);
  s->our_window = s->our_window_max;
  return ssh_send(c, adjust, sizeof adjust);
}

// The client's packets → channel data to the workstation. The client is read after its EOF too: its
// window adjustments and its CLOSE still come; and while the workstation is slow too (relay.h
// ssh_reads_always).
static void from_client(conn *c) {
  relay_thread *t = c->t;
  ssh_state *s = c->ssh;
  dir_t *d = &c->d[0];
  uint8_t *buf = (uint8_t *)t->buf;
  if (!grant_window(c)) return;  // the workstation took what waited for it: the client may send more
  for (int round = 0; round < ROUNDS && !c->done; round++) {
    size_t have = s->partial_len;
    if (have) memcpy(buf, s->partial, have);
    ssize_t n = recv(c->s[0].fd, buf + have, READ_BUF - have, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) relay_fail(c, 0, errno);
      return;
    }
    if (n == 0) {
      // The client's connection is gone (nothing is said after its FIN): the session is over.
      if (have) relay_fail(c, 0, EPROTO);
      if (c->first_eof < 0) c->first_eof = 0;
      c->done = true;
      return;
    }
    size_t total = have + (size_t)n, off = 0, plain = 0;
    bool eof = false, close = false;
    while (total - off >= 4) {
      size_t len = be32(buf + off);
      if (len < 16 || len % 16 || len > SSH_MAX_PACKET) {
        relay_fail(c, 0, EPROTO);
        return;
      }
      if (total - off < 4 + len + 16) break;
      uint8_t *pl;
      size_t pl_len;
      if (open_packet(t->cipher, s, buf + off, len, &pl, &pl_len) < 0) {
        relay_fail(c, 0, EBADMSG);
        return;
      }
      if (!on_packet(c, pl, pl_len, buf, &plain, &eof, &close)) return;
      off += 4 + len + 16;
      if (eof) d->eof = true;  // so that data after it is refused
    }
    if (!relay_keep_partial(c, &s->partial, &s->partial_len, buf + off, total - off, 4 + SSH_MAX_PACKET + 16)) return;
    __atomic_add_fetch(&d->bytes, (uint64_t)plain, __ATOMIC_RELAXED);
    // Behind what already waits for the workstation, kept in order (the window bounds it: see grant_window).
    bool sent = (plain == 0 || relay_append(c, 0, buf, plain)) && !d->pend_len;
    if (c->done || !grant_window(c)) return;
    if (eof) {
      if (c->first_eof < 0) c->first_eof = 0;
      ssh_pass_fin(c, 0);  // once what came before it has gone (else when it drains)
      if (!c->d[1].eof) relay_half_closed(c);  // the workstation goes on: bound its silence (linger.c)
    }
    if (close) {
      // The channel is closed both ways. As sshd does, the client is the one to close the connection
      // (OpenSSH reports "closed by remote host" and fails otherwise): its FIN ends the session. One
      // that keeps the connection is sent a DISCONNECT after LINGER_SECONDS (ssh_linger_expired).
      if (!s->close_sent && !send_channel_message(c, MSG_CHANNEL_CLOSE)) return;
      s->close_sent = true;
      if (c->first_eof < 0) c->first_eof = 0;
      if (!linger(c)) return;
    }
    if (!sent || (size_t)n < READ_BUF - have) return;  // full destination, or the socket is drained
  }
}

// The workstation's bytes → CHANNEL_DATA packets, as many as the client's window lets go.
static void to_client(conn *c) {
  relay_thread *t = c->t;
  ssh_state *s = c->ssh;
  dir_t *d = &c->d[1];
  size_t chunk = s->peer_max_packet < 32768 ? s->peer_max_packet : 32768;
  size_t fit = SEALED_CAP / (chunk + SSH_DATA_OVERHEAD) * chunk;
  for (int round = 0; round < ROUNDS && !c->done && !d->eof; round++) {
    if (d->pend_len || ssh_window_closed(c, 1)) return;  // arm() waits for EPOLLOUT, a window adjustment, the new keys
    size_t want = READ_BUF < fit ? READ_BUF : fit;
    if (want > s->peer_window) want = (size_t)s->peer_window;
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
    s->peer_window -= (uint64_t)n;
    size_t sealed = 0;
    for (size_t off = 0; off < (size_t)n; off += chunk) {
      size_t part = (size_t)n - off < chunk ? (size_t)n - off : chunk;
      uint8_t head[9] = {MSG_CHANNEL_DATA};
      put32(head + 1, s->peer_id);
      put32(head + 5, (uint32_t)part);
      ssize_t r = seal(t->cipher, s, head, sizeof head, (uint8_t *)t->buf + off, part, t->sealed + sealed);
      if (r < 0) {
        relay_fail(c, SIDE_RELAY, EIO);
        return;
      }
      sealed += (size_t)r;
    }
    if (!relay_deliver(c, 1, t->sealed, sealed) || (size_t)n < want) return;
  }
}

void ssh_pump(conn *c, int i) {
  if (i == 0) from_client(c);
  else to_client(c);
}

// A source ended and everything it said has gone: the client's EOF is a FIN to the workstation; the
// workstation's FIN is the channel's EOF. Once both are done the channel is closed, as sshd does, and
// the session ends at the client's CLOSE (or its FIN).
void ssh_pass_fin(conn *c, int i) {
  dir_t *d = &c->d[i];
  ssh_state *s = c->ssh;
  // The client closed the channel while its last bytes waited for the workstation: they have gone now.
  if (i == 0 && s->close_received && !d->pend_len && c->linger_kind != LINGER_FIXED && !c->done && !linger(c)) return;
  if (!d->eof || d->shut || d->pend_len || c->done || ssh_tx_paused(s)) return;  // a key exchange: after its NEWKEYS
  if (i == 0) shutdown(c->s[1].fd, SHUT_WR);
  else if (!send_channel_message(c, MSG_CHANNEL_EOF)) return;
  d->shut = true;
  if (c->d[1 - i].shut && !s->close_sent) {
    if (!send_channel_message(c, MSG_CHANNEL_CLOSE)) return;
    s->close_sent = true;
  }
}

void ssh_free(ssh_state *s) {
  ssh_kex_free(s);
  free(s->partial);
  s->partial = NULL;
  s->partial_len = 0;
  explicit_bzero(&s->rx, sizeof s->rx);
  explicit_bzero(&s->tx, sizeof s->tx);
}
