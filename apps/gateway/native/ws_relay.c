// The HTTPS tunnel's WebSocket sessions handed to the relay threads (ADR 0035): inside the TLS 1.3
// records (tls_relay.c) the client speaks RFC 6455 frames. Node did the HTTP upgrade and read the token
// message; from there the client's binary frames are unmasked into the workstation's byte stream, and
// the workstation's bytes go back as one unmasked binary frame per record. Pings are answered, pongs
// ignored; a close frame is answered and ends the client's direction as a FIN would. Anything else (a
// text frame, an unmasked or reserved-bit frame, a control frame too long or fragmented) ends the
// session with a close frame that says so.
#include "relay.h"

#define OP_CONTINUATION 0x0
#define OP_TEXT 0x1
#define OP_BINARY 0x2
#define OP_CLOSE 0x8
#define OP_PING 0x9
#define OP_PONG 0xA

// After the client's end (its close frame, close_notify or FIN), how long the workstation has to end its
// own before the session ends: what Node's WebSocket relay gave it (tunnel-relay.ts), and a bound on a
// half-closed session that would otherwise count as connected for as long as the workstation keeps it.
#define WS_LINGER_SECONDS 5

// The close sent when the workstation ends its side: what the JavaScript relay says (tunnel-relay.ts).
static const char TARGET_CLOSED[] = "the desktop closed the connection";

// A frame's header for `n` payload bytes (server frames are never masked): its length.
size_t ws_header(uint8_t *out, uint8_t opcode, size_t n) {
  out[0] = (uint8_t)(0x80 | opcode);
  if (n < 126) {
    out[1] = (uint8_t)n;
    return 2;
  }
  out[1] = 126;  // a record carries at most 16 KiB: a 16-bit length always does
  out[2] = (uint8_t)(n >> 8);
  out[3] = (uint8_t)n;
  return 4;
}

// Seal one small frame (a control frame: at most 125 payload bytes) into `out`, which has room for
// 4 + 125 + TLS_OVERHEAD bytes. The record's length, or -1.
static ssize_t seal_frame(conn *c, uint8_t opcode, const uint8_t *payload, size_t n, uint8_t *out) {
  uint8_t frame[4 + 125];
  size_t h = ws_header(frame, opcode, n);
  memcpy(frame + h, payload, n);
  return tls_seal(c->t->cipher, c->tls, 23, frame, h + n, out);
}

// A close frame (header, status code, reason cut to the 125 bytes of a control frame) into `out`
// (room for 4 + 125): its length.
static size_t close_frame(uint8_t *out, uint16_t code, const char *reason) {
  size_t n = strlen(reason);
  if (n > 123) n = 123;
  size_t h = ws_header(out, OP_CLOSE, 2 + n);
  out[h] = (uint8_t)(code >> 8);
  out[h + 1] = (uint8_t)code;
  memcpy(out + h + 2, reason, n);
  return h + 2 + n;
}

// Send a close frame (`frame`, header included) now, best effort: the session ends right after, so
// only when nothing else waits for the client, and once.
static void send_close_now(conn *c, const uint8_t *frame, size_t n) {
  ws_state *w = &c->tls->ws;
  if (w->close_sent || c->d[1].pend_len) return;
  w->close_sent = true;
  uint8_t rec[4 + 125 + TLS_OVERHEAD];
  ssize_t r = tls_seal(c->t->cipher, c->tls, 23, frame, n, rec);
  if (r > 0) (void)send(c->s[0].fd, rec, (size_t)r, MSG_NOSIGNAL | MSG_DONTWAIT);
}

// Queue a control frame to the client after what is queued already (the client reads in order).
static bool queue_frame(conn *c, uint8_t opcode, const uint8_t *payload, size_t n) {
  uint8_t rec[4 + 125 + TLS_OVERHEAD];
  ssize_t r = seal_frame(c, opcode, payload, n, rec);
  if (r < 0) {
    relay_fail(c, SIDE_RELAY, EIO);
    return false;
  }
  return relay_append(c, 1, rec, (size_t)r) || !c->done;
}

// A protocol error by the client: say why in a close frame (best effort), then end the session.
static void refuse(conn *c, uint16_t code, const char *reason, int err) {
  uint8_t frame[4 + 125];
  send_close_now(c, frame, close_frame(frame, code, reason));
  relay_fail(c, 0, err);
}

// A complete control frame from the client. False when the session cannot go on.
static bool control(conn *c, ws_state *w) {
  if (w->opcode == OP_PING) return queue_frame(c, OP_PONG, w->ctl, w->ctl_len);
  if (w->opcode == OP_PONG) return true;
  // Close: answered with its status code (RFC 6455 5.5.1), then the client's direction ends like a FIN.
  w->close_received = true;
  if (!w->close_sent) {
    w->close_sent = true;
    if (!queue_frame(c, OP_CLOSE, w->ctl, w->ctl_len >= 2 ? 2 : 0)) return false;
  }
  return true;
}

// The header's length once its first two bytes are in (mask included: client frames are masked).
static size_t header_length(const uint8_t *h) {
  uint8_t len7 = h[1] & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

// Unmask `n` bytes in place with the frame's mask, from where the last call stopped.
static void unmask(ws_state *w, uint8_t *p, size_t n) {
  size_t k = 0;
  uint8_t at = w->mask_at;
  for (; k < n && (at & 3); k++, at++) p[k] ^= w->mask[at & 3];
  uint32_t m32;
  memcpy(&m32, w->mask, 4);
  uint64_t m64 = (uint64_t)m32 << 32 | m32;
  for (; k + 8 <= n; k += 8) {
    uint64_t v;
    memcpy(&v, p + k, 8);
    v ^= m64;
    memcpy(p + k, &v, 8);
  }
  for (; k < n; k++, at++) p[k] ^= w->mask[at & 3];
  w->mask_at = (uint8_t)((w->mask_at + n) & 3);
}

// The plaintext `p[0..n)` from the client's records: frames in, the workstation's bytes out, in place
// at the front of `p`. Their length; -1 when the session ended. *closing: the client sent its close.
ssize_t ws_unframe(conn *c, uint8_t *p, size_t n, bool *closing) {
  ws_state *w = &c->tls->ws;
  size_t in = 0, out = 0;
  while (in < n && !w->close_received) {
    if (!w->in_frame) {
      // The header, possibly split across records: gathered in w->hdr.
      while (in < n && (w->hdr_len < 2 || w->hdr_len < header_length(w->hdr))) w->hdr[w->hdr_len++] = p[in++];
      if (w->hdr_len < 2 || w->hdr_len < header_length(w->hdr)) break;
      const uint8_t *h = w->hdr;
      uint8_t op = h[0] & 0x0f, len7 = h[1] & 0x7f;
      bool fin = h[0] & 0x80;
      uint64_t len = len7;
      if (len7 == 126) len = (uint64_t)h[2] << 8 | h[3];
      if (len7 == 127) {
        len = 0;
        for (int b = 0; b < 8; b++) len = len << 8 | h[2 + b];
      }
      memcpy(w->mask, h + header_length(h) - 4, 4);
      w->hdr_len = 0;
      if ((h[0] & 0x70) || !(h[1] & 0x80) || len >> 63) return refuse(c, 1002, "WebSocket protocol error", EPROTO), -1;
      // The words of the contract's TUNNEL_TEXT_FRAME_CLOSE, as Node's relay sends them (tunnel-ws-native.test.ts checks both).
      if (op == OP_TEXT) return refuse(c, 1003, "this tunnel carries binary frames only", EPROTO), -1;
      if (op >= 0x8) {
        if (!fin || len > 125 || (op != OP_CLOSE && op != OP_PING && op != OP_PONG)) return refuse(c, 1002, "WebSocket protocol error", EPROTO), -1;
      } else if (op == OP_BINARY ? w->in_message : op != OP_CONTINUATION || !w->in_message) {
        return refuse(c, 1002, "WebSocket protocol error", EPROTO), -1;
      } else {
        w->in_message = !fin;
      }
      w->opcode = op;
      w->left = len;
      w->mask_at = 0;
      w->ctl_len = 0;
      w->in_frame = true;
    }
    size_t take = (size_t)(w->left < n - in ? w->left : n - in);
    unmask(w, p + in, take);
    if (w->opcode >= 0x8) {
      memcpy(w->ctl + w->ctl_len, p + in, take);
      w->ctl_len = (uint8_t)(w->ctl_len + take);
    } else {
      memmove(p + out, p + in, take);
      out += take;
    }
    in += take;
    w->left -= take;
    if (w->left == 0) {
      w->in_frame = false;
      if (w->opcode >= 0x8 && !control(c, w)) return -1;
    }
  }
  *closing = w->close_received;
  return (ssize_t)out;
}

// Seal the workstation's `n` bytes (at most TLS_MAX_PLAIN - 4) as one binary frame in one record.
ssize_t ws_seal_binary(conn *c, const uint8_t *in, size_t n, uint8_t *out) {
  uint8_t h[4];
  size_t hl = ws_header(h, OP_BINARY, n);
  return tls_seal_parts(c->t->cipher, c->tls, h, hl, in, n, out);
}

// The workstation ended its side: a close frame before the TLS close_notify (best effort, as that).
void ws_send_target_closed(conn *c) {
  uint8_t frame[4 + 125];
  send_close_now(c, frame, close_frame(frame, 1000, TARGET_CLOSED));
}

// JavaScript closed the session (a revoke): the close frame it made (`parting`) before the end.
void ws_send_parting(conn *c) {
  if (c->parting_len) send_close_now(c, c->parting, c->parting_len);
}

void ws_linger(conn *c) {
  if (c->done || c->linger.fd >= 0) return;
  if (!relay_timer_start(c, WS_LINGER_SECONDS, LINGER_FIXED)) c->done = true;  // no timer: end now rather than wait without a bound
}

// The workstation kept its side past the wait: the session ends (as the client's end: it came first).
void ws_linger_expired(conn *c) {
  c->done = true;
}
