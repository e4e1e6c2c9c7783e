// The gateway's native byte mover (ADR 0011): what the relay thread (relay_thread.c) and the
// Node-API binding (binding.c) share.
//
// The gateway's native byte mover. JavaScript accepts, checks the grant and connects to the
// workstation; then it hands both sockets here (`add` duplicates the descriptors, JavaScript closes its
// own) and a relay thread moves the bytes with epoll: read/write through one buffer per thread for small
// messages (input events, keystrokes), splice(2) through a pipe once a direction carries bulk data
// (desktop pixels, file copies), so the payload never enters user space. Idle connections hold no buffer
// and no pipe. The thread reports each session's end (which side closed or failed, bytes each way) back
// to JavaScript in batches. Half-close is relayed: a FIN from one side ends writing to the other once
// every byte before it has been written, and the other direction runs on until it ends or has been
// silent for the half-close bound (linger.c).
#ifndef STAGEDOOR_RELAY_H
#define STAGEDOOR_RELAY_H
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
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <unistd.h>

// Node's own OpenSSL (its binary exports libcrypto; the headers ship with Node's): the TLS records of
// the HTTPS tunnel's native sessions (tls_relay.c).
#include <openssl/evp.h>

#define READ_BUF (256 * 1024)  // one per relay thread, shared by every small read
#define BULK (16 * 1024)        // a read this large means bulk data: move the direction to a pipe
#define PIPE_SIZE (256 * 1024)  // like HAProxy's tune.bufsize 128k+: large moves, fewer wake-ups
#define POOL_MAX 64             // idle pipes kept per thread
#define PIPES_MAX 2048          // pipes in use per thread (two descriptors each) before falling back to copies
#define ROUNDS 8                // reads per wake-up before other connections get their turn
#define MAX_THREADS 16

// TLS 1.3 records (RFC 8446 section 5): the most plaintext one carries, and what a sealed record adds
// (header, inner content type, AEAD tag). A peer's record may be up to 256 bytes longer than its plaintext.
#define TLS_MAX_PLAIN 16384
#define TLS_OVERHEAD (5 + 1 + 16)
#define TLS_MAX_CIPHERTEXT (TLS_MAX_PLAIN + 256)
#define TLS_PARAMS_LEN (1 + 2 * (32 + 12 + 8))  // binding.c `add`: key length, then rx and tx keys
// The WebSocket path: one more byte (1), and each record to the client carries one binary frame, whose
// header (at most 4 bytes at this size) comes out of the record's plaintext.
#define WS_MAX_PAYLOAD (TLS_MAX_PLAIN - 4)
#define WS_READ ((READ_BUF / TLS_MAX_PLAIN) * WS_MAX_PAYLOAD)  // what fits binding.c's `sealed`

enum end_kind { END_CLOSED = 0, END_ERROR = 1, END_REQUESTED = 2 };
// The side an error belongs to: 0 client, 1 target, or the relay itself (an allocation or an
// epoll_ctl that failed: the session cannot be relayed correctly, so it ends and says why).
#define SIDE_RELAY 2
// The epoll index of a session's linger timer (not a socket side: linger.c).
#define SIDE_LINGER 2

typedef struct conn conn;

// One direction's traffic keys (RFC 8446 section 7.3) and its record sequence number.
typedef struct {
  uint8_t key[32], iv[12];
  uint64_t seq;
} tls_keys;

typedef struct {
  conn *c;
  int fd;
  uint8_t idx;      // 0: client, 1: target, SIDE_LINGER: the session's linger timer
  uint32_t armed;   // the epoll events currently registered
} side_t;

// The WebSocket frames inside a tunnel session's records (ws_relay.c, ADR 0035): where the client's
// current frame stands.
typedef struct {
  uint8_t hdr[14], hdr_len;   // a frame header not complete yet (it may span records)
  bool in_frame;              // the header was read; `left` payload bytes are still to come
  bool in_message;            // a fragmented binary message goes on (continuation frames)
  uint8_t opcode, mask[4], mask_at;
  uint64_t left;
  uint8_t ctl[125], ctl_len;  // a control frame's payload (ping, close), gathered
  bool close_sent, close_received;
} ws_state;

// A session whose client side speaks TLS 1.3 records (the HTTPS tunnel's native mode, ADR 0032): the
// handshake was JavaScript's (Node's TLS); the relay thread seals and opens the application records.
typedef struct {
  const EVP_CIPHER *cipher;   // AES-128-GCM or AES-256-GCM
  tls_keys rx, tx;            // rx: the client's records; tx: ours to the client
  uint8_t *partial;           // the start of a record not complete yet (allocated while there is one)
  uint32_t partial_len;
  bool websocket;             // the records carry WebSocket frames (the tunnel's WebSocket path)
  ws_state ws;
} tls_state;
typedef struct relay_thread relay_thread;


// A session whose client side speaks SSH binary packets (the SSH jump host's native mode, ADR 0033):
// ssh2 did the key exchange, the authentication and read the one channel open; the relay thread
// moves that channel's data in AES-GCM packets (RFC 5647), with SSH's flow control.
#define SSH_PARAMS_LEN (1 + 2 * (32 + 12) + 6 * 4)  // binding.c `add`: key length, rx and tx keys, channel; then the rekey material (ssh_kex.c)
#define SSH_MAX_PACKET 35000      // the largest packet_length accepted from the client (RFC 4253 6.1)
#define SSH_DATA_OVERHEAD 49      // length, pad length, CHANNEL_DATA header (9), padding (≤ 19), tag
typedef struct {
  uint8_t key[32], iv[12];  // iv: a fixed field, then the 64-bit invocation counter (big-endian)
} ssh_keys;
typedef struct {
  const EVP_CIPHER *cipher;
  ssh_keys rx, tx;
  uint32_t peer_id, our_id;  // the client's channel number, ours
  uint64_t peer_window;      // bytes we may still send on the channel
  uint32_t peer_max_packet, our_max_packet;
  uint32_t our_window, our_window_max;  // bytes the client may still send; what we grant again
  bool close_sent, close_received;
  uint8_t *partial;          // the start of a packet not complete yet (allocated while there is one)
  uint32_t partial_len;
  uint8_t *rekey;            // what a key re-exchange needs (ssh_kex.c; NULL: a KEXINIT ends the session)
  struct ssh_kex *kex;       // a key re-exchange the client began, until its NEWKEYS (allocated for that long)
} ssh_state;
// A key re-exchange under way (ssh_kex.c).
struct ssh_kex {
  uint8_t *i_c, *i_s;  // the two KEXINIT payloads, for the exchange hash
  uint32_t i_c_len, i_s_len;
  bool ignore_guess;   // the client guessed wrong (first_kex_packet_follows): its next exchange packet goes unread
  bool replied;        // our NEWKEYS went: the client's NEWKEYS is next
  ssh_keys rx_next;    // the client's new keys, from its NEWKEYS on
};
// Our KEXINIT went, our NEWKEYS not yet: nothing but the exchange goes to the client.
static inline bool ssh_tx_paused(const ssh_state *s) { return s->kex && !s->kex->replied; }
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
  tls_state *tls;             // NULL: bytes are relayed as they are
  ssh_state *ssh;             // NULL unless the client side speaks SSH packets
  int8_t first_eof;           // which side sent FIN first, -1 none
  uint8_t linger_kind;        // what `linger` waits for (linger.c), LINGER_NONE while it is not running
  side_t linger;              // a timerfd (idx SIDE_LINGER) bounding a wait after one side's end
  uint64_t linger_mark;       // LINGER_IDLE: the bytes read when the timer was last set
  uint32_t linger_pending;    // LINGER_IDLE: and the bytes waiting to be written then (their draining is movement too)
  int8_t err_side;            // 0, 1 or SIDE_RELAY; -1 none
  int err;
  bool done;                  // finished by the relay thread (its descriptors are closed)
  // Under sr_lock: JavaScript asked to close it; its end is queued for JavaScript (no request may
  // name it after that: JavaScript frees it once it has read the end); it is on its thread's list
  // of close requests (linked through the conn itself, so that asking to close allocates nothing
  // and a revocation cannot be lost to a full memory).
  bool close_requested, published, rq_queued;
  conn *rq_prev, *rq_next;
  uint8_t *parting;           // a WebSocket session's close frame for its revoke (set with close_requested)
  uint8_t parting_len;
  conn *next_add;             // its thread's list of sessions to register (under sr_lock)
  conn *next_done;
};

struct relay_thread {
  int ep, evfd;
  pthread_t th;
  char *buf;
  uint8_t *sealed;            // TLS sessions: records sealed from one read of the target
  EVP_CIPHER_CTX *cipher;     // TLS sessions: one context, keyed per record
  int pool[POOL_MAX][2];
  int pooled, pipes_in_use;
  conn *adds;                 // handed over by JavaScript, not registered yet (under sr_lock)
  conn *requests;             // close requested by JavaScript (under sr_lock)
  conn *unpublished;          // ended, not queued for JavaScript yet (this thread only)
};

// Shared with JavaScript, under `sr_lock`: the slot table, the queue of ended sessions, close requests
// (relay_thread.c defines them).
extern pthread_mutex_t sr_lock;
extern conn **sr_slots;
extern uint32_t *sr_slot_gen;
extern uint32_t sr_nslots, *sr_free_slots, sr_nfree;
extern double *sr_ended;         // records of 6 numbers: id, kind, side, errno, bytes up, bytes down
// Room for every session not yet freed (6 × (sr_live + queued records)): `add` reserves it, so a
// session's end never needs memory the relay thread might not get.
extern size_t sr_nended, sr_capended;
extern napi_threadsafe_function sr_notify;
extern relay_thread sr_threads[MAX_THREADS];
extern int sr_nthreads, sr_next_thread;
extern uint64_t sr_live;

// Fault injection for the tests (binding.c `injectFaults`): the next `skip` calls of a kind succeed,
// the `fail` after them fail as the kernel or libc would (ENOMEM, ENOSPC). Off unless a test arms it;
// then one relaxed load per call. Every allocation and epoll_ctl of the relay goes through these.
enum relay_fault { FAULT_ALLOC = 0, FAULT_EPOLL_CTL = 1, FAULT_KINDS = 2 };
extern int sr_faults_armed;
bool relay_fault(enum relay_fault kind);
void relay_set_fault(enum relay_fault kind, uint32_t skip, uint32_t fail);

static inline bool faulty(enum relay_fault kind) {
  return __atomic_load_n(&sr_faults_armed, __ATOMIC_RELAXED) && relay_fault(kind);
}
static inline void *relay_malloc(size_t n) {
  if (faulty(FAULT_ALLOC)) return errno = ENOMEM, NULL;
  return malloc(n);
}
static inline void *relay_calloc(size_t n, size_t size) {
  if (faulty(FAULT_ALLOC)) return errno = ENOMEM, NULL;
  return calloc(n, size);
}
static inline void *relay_realloc(void *p, size_t n) {
  if (faulty(FAULT_ALLOC)) return errno = ENOMEM, NULL;
  return realloc(p, n);
}
static inline int relay_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) {
  if (faulty(FAULT_EPOLL_CTL)) return errno = ENOSPC, -1;
  return epoll_ctl(ep, op, fd, ev);
}

// relay_thread.c, for tls_relay.c: end a session with an error; a source sent its end.
void relay_fail(conn *c, int side, int err);
void relay_note_eof(conn *c, int i);
// linger.c: a session's one timer (idx SIDE_LINGER), registered with its thread's epoll, firing after
// `seconds`; false when none could be had. LINGER_FIXED: the SSH jump host's and the WebSocket path's
// waits (the session ends). LINGER_IDLE: a half-closed session's bound (relay_half_closed: it ends if
// nothing moved). Stopping closes it (and one a failed start left); finish() stops it for every session.
enum linger_kind { LINGER_NONE = 0, LINGER_FIXED = 1, LINGER_IDLE = 2 };
extern int sr_half_close_seconds;  // binding.c `halfClose`; 0: half-closed sessions wait without a bound
bool relay_timer_start(conn *c, int seconds, enum linger_kind kind);
void relay_timer_stop(conn *c);
void relay_half_closed(conn *c);
void relay_linger_fired(conn *c);

// tls_relay.c: seal `n` ≤ TLS_MAX_PLAIN bytes of content `type` into `out` (room for n + TLS_OVERHEAD);
// the record's length, or -1. Move what one side of a TLS session has to say; send close_notify.
bool tls_setup(conn *c, const uint8_t *params, size_t params_len, const uint8_t *hello, size_t hello_len);  // binding.c `add`
const EVP_CIPHER *tls_cipher(int key_len);  // AES-128-GCM (16) or AES-256-GCM (32), NULL if unavailable
ssize_t tls_seal(EVP_CIPHER_CTX *ctx, tls_state *s, uint8_t type, const uint8_t *in, size_t n, uint8_t *out);
ssize_t tls_seal_parts(EVP_CIPHER_CTX *ctx, tls_state *s, const uint8_t *head, size_t head_len, const uint8_t *in, size_t n, uint8_t *out);
void tls_pump(conn *c, int i);
void tls_send_close_notify(conn *c);
void tls_free(tls_state *s);

// ws_relay.c: the client's plaintext to the workstation's bytes (in place; -1: the session ended);
// the workstation's bytes as a sealed binary frame; the close frames at the ends.
ssize_t ws_unframe(conn *c, uint8_t *p, size_t n, bool *closing);
ssize_t ws_seal_binary(conn *c, const uint8_t *in, size_t n, uint8_t *out);
size_t ws_header(uint8_t *out, uint8_t opcode, size_t n);
void ws_send_target_closed(conn *c);
void ws_send_parting(conn *c);
// The client ended its side: the workstation has WS_LINGER_SECONDS to end its own (then the session ends).
void ws_linger(conn *c);
void ws_linger_expired(conn *c);

// Send what can go to the other side of side i now and keep the rest (tls_relay.c); false when the
// session cannot go on or the destination is full. Append to what direction i already keeps.
bool relay_deliver(conn *c, int i, const uint8_t *data, size_t n);
bool relay_append(conn *c, int i, const uint8_t *data, size_t n);
// Keep the `rest` bytes at `from` (a record or packet not complete yet) for the next read, in a buffer of
// `cap` bytes held only while there is one. False when it cannot be allocated (the session then ends).
bool relay_keep_partial(conn *c, uint8_t **partial, uint32_t *partial_len, const uint8_t *from, size_t rest, size_t cap);

// ssh_relay.c: take the parameters (SSH_PARAMS_LEN bytes) and queue the channel open confirmation;
// move what one side has to say; a source's end; whether the target may be read (the client's window).
bool ssh_setup(conn *c, const uint8_t *params, size_t len);
void ssh_pump(conn *c, int i);
void ssh_pass_fin(conn *c, int i);
void ssh_free(ssh_state *s);
void ssh_linger_expired(conn *c);
// The workstation is not read while the client's window is shut, after the client closed the channel,
// nor while a key re-exchange holds what goes to the client.
static inline bool ssh_window_closed(const conn *c, int i) { return c->ssh && i == 1 && (c->ssh->peer_window == 0 || c->ssh->close_received || ssh_tx_paused(c->ssh)); }
// An SSH client is read whatever waits for the workstation: SSH's own flow control bounds what it may send
// (the window is granted again only once the workstation took the data), and it carries the window
// adjustments and key exchanges that the workstation's side may be waiting for (ssh_relay.c).
static inline bool ssh_reads_always(const conn *c, int i) { return c->ssh && i == 0; }
// An SSH client that has sent its channel's EOF (or CLOSE) has said all it will: a reset, or a write it
// no longer takes, is then how it hung up, as ssh2's engine reports it too. OpenSSH does so when it exits
// with bytes of ours unread, say the answer to a re-key it began at the end, its CLOSE queued behind it.
// relay_fail: when `err` is such a hang-up, end the session as the client's end and say so (true).
static inline bool ssh_end_as_hang_up(conn *c, int side, int err) {
  if (!c->ssh || side != 0 || !(c->d[0].eof || c->ssh->close_received) || (err != ECONNRESET && err != EPIPE)) return false;
  if (c->first_eof < 0) c->first_eof = 0;
  c->done = true;
  return true;
}

// SSH's wire (RFC 4251 5): big-endian uint32, and a string field at `p` within `end` (its length, or -1
// when it runs past the payload).
static inline uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static inline ssize_t string_at(const uint8_t *p, const uint8_t *end) {
  if (end - p < 4) return -1;
  uint32_t n = be32(p);
  return (size_t)(end - p - 4) < n ? -1 : (ssize_t)n;
}

// ssh_relay.c, for ssh_kex.c: seal one packet to the client after what waits for it (false: the session ended).
bool ssh_send(conn *c, const uint8_t *payload, size_t n);
// ssh_kex.c: a key re-exchange the client asks for (RFC 4253 7, curve25519-sha256 of RFC 8731, the host key
// Ed25519): take the material at `add`; the client's KEXINIT, KEX_ECDH_INIT and NEWKEYS. False: the session ended.
bool ssh_rekey_setup(ssh_state *s, const uint8_t *tail, size_t len);
bool ssh_kex_init(conn *c, const uint8_t *payload, size_t n);
bool ssh_kex_ecdh(conn *c, const uint8_t *payload, size_t n);
bool ssh_kex_newkeys(conn *c);
void ssh_kex_free(ssh_state *s);

// A session's id as JavaScript holds it: the slot's generation above 32 bits, its index below.
static inline double conn_id(const conn *c) { return (double)c->gen * 4294967296.0 + c->index; }

// The relay thread's loop (pthread start routine; its argument is its relay_thread).
void *relay_run(void *arg);
// Wake a relay thread to look at its lists (adds, close requests).
void relay_wake(relay_thread *t);

#endif
