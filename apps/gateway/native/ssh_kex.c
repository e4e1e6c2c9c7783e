// A key re-exchange on a native SSH session (RFC 4253 section 7; curve25519-sha256, RFC 8731; the host key
// Ed25519, RFC 8709). OpenSSH asks for one after 64 GiB under AES-GCM, or sooner under a `RekeyLimit`;
// before, the relay threads could only end the session there. The client begins it; the relay answers:
//
//   client KEXINIT       → our KEXINIT (the current cipher, curve25519-sha256, ssh-ed25519, no compression)
//   client KEX_ECDH_INIT → KEX_ECDH_REPLY (our host key, our ephemeral key, the exchange hash signed), NEWKEYS;
//                          from here our packets go under the new keys
//   client NEWKEYS       → the client's packets go under the new keys
//
// Between our KEXINIT and our NEWKEYS nothing else goes to the client (the workstation is not read, window
// adjustments and the channel's end wait); between the client's KEXINIT and its NEWKEYS it may send only the
// exchange's and the transport's messages (ssh_relay.c refuses the rest).
//
// What it needs from the first exchange, which ssh2 made, comes with `add` (ssh2-keys.ts): both version
// strings and the session id, and the host key (Ed25519 seed and public key), kept for the session and
// wiped at its end. The shared secret, the ephemeral key and the hash exist only while they are used.
#include "relay.h"

#include <openssl/rand.h>

enum { MSG_KEXINIT = 20, MSG_NEWKEYS = 21, MSG_KEX_ECDH_REPLY = 31 };
// A KEXINIT's name lists (RFC 4253 7.1), in order.
enum { NL_KEX, NL_HOSTKEY, NL_ENC_CS, NL_ENC_SC, NL_MAC_CS, NL_MAC_SC, NL_COMP_CS, NL_COMP_SC, NL_LANG_CS, NL_LANG_SC, NL_COUNT };

static const char OUR_KEX[] = "curve25519-sha256,curve25519-sha256@libssh.org";
static const char HOSTKEY_ALG[] = "ssh-ed25519";

// The rekey material (ssh_state.rekey): [len][V_C] [len][V_S] [len][session id] [seed 32][public 32].
typedef struct {
  const uint8_t *vc, *vs, *sid, *seed, *pub;
  uint8_t vc_len, vs_len, sid_len;
} material;

static material material_of(const uint8_t *m) {
  material r;
  r.vc_len = m[0], r.vc = m + 1;
  r.vs_len = r.vc[r.vc_len], r.vs = r.vc + r.vc_len + 1;
  r.sid_len = r.vs[r.vs_len], r.sid = r.vs + r.vs_len + 1;
  r.seed = r.sid + r.sid_len, r.pub = r.seed + 32;
  return r;
}

bool ssh_rekey_setup(ssh_state *s, const uint8_t *tail, size_t len) {
  size_t at = 0;
  for (int part = 0; part < 3; part++) {  // V_C, V_S, the session id: each at least one byte
    if (at >= len || tail[at] == 0) return errno = EINVAL, false;
    at += 1 + tail[at];
  }
  if (at + 64 != len) return errno = EINVAL, false;
  s->rekey = relay_malloc(len);
  if (!s->rekey) return false;
  memcpy(s->rekey, tail, len);
  return true;
}

// The exchange's own state (the rekey material stays for the next one).
static void kex_end(ssh_state *s) {
  if (!s->kex) return;
  free(s->kex->i_c);
  free(s->kex->i_s);
  explicit_bzero(s->kex, sizeof *s->kex);
  free(s->kex);
  s->kex = NULL;
}

void ssh_kex_free(ssh_state *s) {
  kex_end(s);
  if (s->rekey) {
    material m = material_of(s->rekey);
    explicit_bzero(s->rekey, (size_t)(m.pub + 32 - s->rekey));
    free(s->rekey);
    s->rekey = NULL;
  }
}

// Whether the comma-separated list `l` names `name`; and whether it names it first.
static bool names(const uint8_t *l, uint32_t n, const char *name, bool *first) {
  size_t want = strlen(name);
  for (uint32_t at = 0, k = 0; at <= n; k++) {
    uint32_t end = at;
    while (end < n && l[end] != ',') end++;
    if (end - at == want && memcmp(l + at, name, want) == 0) {
      if (first) *first = k == 0;
      return true;
    }
    at = end + 1;
  }
  return false;
}

static uint8_t *put_string(uint8_t *p, const void *data, uint32_t n) {
  put32(p, n);
  memcpy(p + 4, data, n);
  return p + 4 + n;
}

// The client's KEXINIT: agree, or end the session (ENOTSUP) when it offers nothing we can answer with.
bool ssh_kex_init(conn *c, const uint8_t *pl, size_t n) {
  ssh_state *s = c->ssh;
  const uint8_t *lists[NL_COUNT], *p = pl + 17, *end = pl + n;
  uint32_t lens[NL_COUNT];
  if (n < 17) return relay_fail(c, 0, EPROTO), false;
  for (int i = 0; i < NL_COUNT; i++) {
    ssize_t len = string_at(p, end);
    if (len < 0) return relay_fail(c, 0, EPROTO), false;
    lists[i] = p + 4, lens[i] = (uint32_t)len;
    p += 4 + len;
  }
  if (end - p < 5) return relay_fail(c, 0, EPROTO), false;
  bool follows = p[0] != 0;
  const char *cipher = EVP_CIPHER_get_key_length(s->cipher) == 16 ? "aes128-gcm@openssh.com" : "aes256-gcm@openssh.com";
  // Our lists hold one choice each (the kex's two names are one method), so agreeing is finding it in the client's.
  bool kex_first = false, hostkey_first = false, alias_first = false;
  bool kex = names(lists[NL_KEX], lens[NL_KEX], "curve25519-sha256", &kex_first) | names(lists[NL_KEX], lens[NL_KEX], "curve25519-sha256@libssh.org", &alias_first);
  if (!kex || !names(lists[NL_HOSTKEY], lens[NL_HOSTKEY], HOSTKEY_ALG, &hostkey_first) || !names(lists[NL_ENC_CS], lens[NL_ENC_CS], cipher, NULL) ||
      !names(lists[NL_ENC_SC], lens[NL_ENC_SC], cipher, NULL) || !names(lists[NL_COMP_CS], lens[NL_COMP_CS], "none", NULL) || !names(lists[NL_COMP_SC], lens[NL_COMP_SC], "none", NULL))
    return relay_fail(c, 0, ENOTSUP), false;
  struct ssh_kex *k = s->kex = relay_calloc(1, sizeof *k);
  if (!k) return relay_fail(c, SIDE_RELAY, ENOMEM), false;
  k->ignore_guess = follows && !((kex_first || alias_first) && hostkey_first);
  // Ours: the MAC lists are the client's own (an AEAD cipher makes them moot, and echoing them agrees whatever it does).
  size_t cipher_len = strlen(cipher), size = 1 + 16 + 4 * NL_COUNT + (sizeof OUR_KEX - 1) + (sizeof HOSTKEY_ALG - 1) + 2 * cipher_len + lens[NL_MAC_CS] + lens[NL_MAC_SC] + 2 * 4 + 5;
  k->i_c = relay_malloc(n);
  k->i_s = relay_malloc(size);
  if (!k->i_c || !k->i_s) return relay_fail(c, SIDE_RELAY, ENOMEM), false;
  memcpy(k->i_c, pl, n);
  k->i_c_len = (uint32_t)n;
  uint8_t *o = k->i_s;
  *o++ = MSG_KEXINIT;
  if (RAND_bytes(o, 16) != 1) return relay_fail(c, SIDE_RELAY, EIO), false;
  o += 16;
  o = put_string(o, OUR_KEX, sizeof OUR_KEX - 1);
  o = put_string(o, HOSTKEY_ALG, sizeof HOSTKEY_ALG - 1);
  o = put_string(o, cipher, (uint32_t)cipher_len);
  o = put_string(o, cipher, (uint32_t)cipher_len);
  o = put_string(o, lists[NL_MAC_CS], lens[NL_MAC_CS]);
  o = put_string(o, lists[NL_MAC_SC], lens[NL_MAC_SC]);
  o = put_string(o, "none", 4);
  o = put_string(o, "none", 4);
  o = put_string(o, "", 0);
  o = put_string(o, "", 0);
  *o++ = 0;  // first_kex_packet_follows
  put32(o, 0);
  k->i_s_len = (uint32_t)size;
  return ssh_send(c, k->i_s, size);  // from here ssh_tx_paused until our NEWKEYS
}

// SHA-256 over the parts of RFC 4253 7.2 and 8 (each `string` is length-prefixed).
static bool hash_string(EVP_MD_CTX *h, const uint8_t *p, uint32_t n) {
  uint8_t len[4];
  put32(len, n);
  return EVP_DigestUpdate(h, len, 4) == 1 && EVP_DigestUpdate(h, p, n) == 1;
}

// One derived key (RFC 4253 7.2): HASH(K || H || letter || session_id), 32 bytes (all AES-GCM needs).
static bool derive(const uint8_t *k_mpint, size_t k_len, const uint8_t h[32], char letter, const material *m, uint8_t out[32]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 && EVP_DigestUpdate(ctx, k_mpint, k_len) == 1 && EVP_DigestUpdate(ctx, h, 32) == 1 &&
            EVP_DigestUpdate(ctx, &letter, 1) == 1 && EVP_DigestUpdate(ctx, m->sid, m->sid_len) == 1 && EVP_DigestFinal_ex(ctx, out, &len) == 1 && len == 32;
  EVP_MD_CTX_free(ctx);
  return ok;
}

// The client's ephemeral key: the shared secret, the exchange hash signed with the host key, the reply and
// NEWKEYS; from here our packets go under the new keys.
bool ssh_kex_ecdh(conn *c, const uint8_t *pl, size_t n) {
  ssh_state *s = c->ssh;
  struct ssh_kex *k = s->kex;
  if (k->ignore_guess) {
    k->ignore_guess = false;  // RFC 4253 7: the packet a wrong guess sent is ignored
    return true;
  }
  ssize_t q_len = string_at(pl + 1, pl + n);
  if (k->replied || q_len != 32) return relay_fail(c, 0, EPROTO), false;
  const uint8_t *q_c = pl + 5;
  material m = material_of(s->rekey);
  EVP_PKEY_CTX *gen = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL), *agree = NULL;
  EVP_PKEY *ours = NULL, *theirs = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, q_c, 32), *host = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, m.seed, 32);
  EVP_MD_CTX *h = EVP_MD_CTX_new(), *sign = EVP_MD_CTX_new();
  uint8_t q_s[32], secret[32], k_mpint[4 + 33], hash[32], sig[64], keys[4][32];
  size_t q_s_len = 32, secret_len = 32, sig_len = 64, k_len = 0;
  unsigned int hash_len = 0;
  bool ok = gen && theirs && host && h && sign && EVP_PKEY_keygen_init(gen) == 1 && EVP_PKEY_keygen(gen, &ours) == 1 &&
            EVP_PKEY_get_raw_public_key(ours, q_s, &q_s_len) == 1 && (agree = EVP_PKEY_CTX_new(ours, NULL)) && EVP_PKEY_derive_init(agree) == 1 &&
            EVP_PKEY_derive_set_peer(agree, theirs) == 1 && EVP_PKEY_derive(agree, secret, &secret_len) == 1 && secret_len == 32;
  if (ok) {
    // K as an mpint (RFC 8731 3.1: the 32 bytes as a big-endian unsigned number); all zeros is refused.
    size_t lead = 0;
    while (lead < 32 && secret[lead] == 0) lead++;
    ok = lead < 32;
    size_t body = 32 - lead + (lead < 32 && secret[lead] & 0x80 ? 1 : 0);
    put32(k_mpint, (uint32_t)body);
    k_mpint[4] = 0;
    memcpy(k_mpint + 4 + body - (32 - lead), secret + lead, 32 - lead);
    k_len = 4 + body;
  }
  uint8_t k_s[4 + 11 + 4 + 32], *o = put_string(k_s, HOSTKEY_ALG, 11);
  put_string(o, m.pub, 32);
  ok = ok && EVP_DigestInit_ex(h, EVP_sha256(), NULL) == 1 && hash_string(h, m.vc, m.vc_len) && hash_string(h, m.vs, m.vs_len) && hash_string(h, k->i_c, k->i_c_len) &&
       hash_string(h, k->i_s, k->i_s_len) && hash_string(h, k_s, sizeof k_s) && hash_string(h, q_c, 32) && hash_string(h, q_s, 32) &&
       EVP_DigestUpdate(h, k_mpint, k_len) == 1 && EVP_DigestFinal_ex(h, hash, &hash_len) == 1 && hash_len == 32 &&
       EVP_DigestSignInit(sign, NULL, NULL, NULL, host) == 1 && EVP_DigestSign(sign, sig, &sig_len, hash, 32) == 1 && sig_len == 64;
  for (int i = 0; ok && i < 4; i++) ok = derive(k_mpint, k_len, hash, (char)('A' + i), &m, keys[i]);
  EVP_PKEY_CTX_free(gen);
  EVP_PKEY_CTX_free(agree);
  EVP_PKEY_free(ours);
  EVP_PKEY_free(theirs);
  EVP_PKEY_free(host);
  EVP_MD_CTX_free(h);
  EVP_MD_CTX_free(sign);
  explicit_bzero(secret, sizeof secret);
  explicit_bzero(k_mpint, sizeof k_mpint);
  if (!ok) {
    explicit_bzero(keys, sizeof keys);
    return relay_fail(c, SIDE_RELAY, EIO), false;
  }
  // KEX_ECDH_REPLY: string K_S, string Q_S, string (string "ssh-ed25519", string signature).
  uint8_t reply[1 + 4 + sizeof k_s + 4 + 32 + 4 + 4 + 11 + 4 + 64];
  reply[0] = MSG_KEX_ECDH_REPLY;
  o = put_string(reply + 1, k_s, sizeof k_s);
  o = put_string(o, q_s, 32);
  put32(o, 4 + 11 + 4 + 64);
  o = put_string(o + 4, HOSTKEY_ALG, 11);
  put_string(o, sig, 64);
  uint8_t newkeys = MSG_NEWKEYS;
  int key_len = EVP_CIPHER_get_key_length(s->cipher);
  bool sent = ssh_send(c, reply, sizeof reply) && ssh_send(c, &newkeys, 1);
  if (sent) {
    // A: the client's IV, B: ours, C: the client's key, D: ours.
    memcpy(k->rx_next.iv, keys[0], 12);
    memcpy(k->rx_next.key, keys[2], (size_t)key_len);
    memcpy(s->tx.iv, keys[1], 12);
    memcpy(s->tx.key, keys[3], (size_t)key_len);
    k->replied = true;  // what goes to the client may go again
    // What waited for the new keys: the channel's end, if it came meanwhile.
    ssh_pass_fin(c, 0);
    ssh_pass_fin(c, 1);
  }
  explicit_bzero(keys, sizeof keys);
  return sent && !c->done;
}

// The client's NEWKEYS: its next packets open under the new keys; the exchange is over.
bool ssh_kex_newkeys(conn *c) {
  ssh_state *s = c->ssh;
  if (!s->kex->replied) return relay_fail(c, 0, EPROTO), false;
  s->rx = s->kex->rx_next;
  kex_end(s);
  return true;
}
