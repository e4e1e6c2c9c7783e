import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { createLog } from '../../apps/gateway/src/log.ts';
import { useRelayEngine } from '../../apps/gateway/src/native-relay.ts';
import type { Admit } from '../../apps/gateway/src/routed/admission.ts';
import { loadOrCreateSshHostKey } from '../../apps/gateway/src/routed/ssh-host-key.ts';
import { SshJumpServer } from '../../apps/gateway/src/routed/ssh-jump.ts';
import { TlsCertificate } from '../../apps/gateway/src/routed/tls-certificate.ts';
import { TunnelServer } from '../../apps/gateway/src/routed/tunnel.ts';
import { freePorts, tsx, waitLine } from './harness.ts';

/**
 * What an idle session of a terminating routed mode holds in the gateway's JavaScript heap, by
 * constructor: `node --expose-gc --import tsx bench/gateway/session-heap.ts <ssh|tunnel-native|tunnel> [sessions]`.
 * The listener runs in this process (every connection admitted, no broker; the tunnel with the native
 * relay); the clients (ssh2 with one forwarded channel each, as `ssh -J`; Node's TLS in the tunnel's
 * native mode; or a WebSocket each, `tunnel`, the browsers' path) run in another process, so the heap
 * is the server side's alone. Two heap snapshots, before and after the sessions open, compared per
 * constructor: the difference divided by the number of sessions is each holder's cost per session. `KEEP_SNAPSHOT=1` keeps the snapshot files (their
 * paths are printed) for DevTools' retainer view.
 */
const MODE = process.argv[2] === 'tunnel-native' || process.argv[2] === 'tunnel' ? process.argv[2] : 'ssh';
const N = Number(process.argv[3] ?? 300);
const HOST = '127.0.0.1';
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const [targetPort] = (await freePorts(1)) as [number];
const target = tsx('bench/gateway/routed-load.ts', 'target', JSON.stringify({ port: targetPort }));
await waitLine(target, 'routed target');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'session-heap-'));
const admit: Admit = async () => ({ ok: true, grantId: '00000000-0000-4000-8000-000000000000', target: { host: HOST, port: targetPort }, onClose: () => undefined, countBytes: () => undefined, ended: () => undefined });
const log = createLog('error', {}, () => undefined);
const via = MODE === 'ssh' ? await sshVia() : await tunnelVia();

async function sshVia() {
  const server = await new SshJumpServer({ hostKey: loadOrCreateSshHostKey(dir).privateKey, listenHost: HOST, port: 0, admit, maxPreAuthPerClient: 100_000, nativeRelay: useRelayEngine('auto', 1).engine === 'native', log }).listen();
  return { kind: 'ssh', ports: [server.address().port], tokens: ['heap'], target: targetPort, clients: Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 1}`) };
}

async function tunnelVia() {
  if (useRelayEngine('native', 1).engine !== 'native') throw new Error('the native relay is not built');
  const certificate = await TlsCertificate.load({ files: null, dataDir: dir, log, hostnames: [HOST] });
  const server = new TunnelServer({ port: 0, host: HOST, certificate, admit, healthy: () => true, log, nativeRelay: true });
  return { kind: MODE, ports: [await server.start()], tokens: ['heap'] };
}
const hold = async (count: number) => {
  const c = tsx('bench/gateway/routed-load.ts', 'idle', JSON.stringify({ via, count }));
  const r = (await waitLine(c, 'idle holder', 300_000)) as { open: number };
  return { c, open: r.open };
};

/** Self size and count per constructor (objects and closures by name; everything else by type). */
function census(): Map<string, { n: number; size: number }> {
  gc!();
  gc!();
  const file = v8.writeHeapSnapshot(path.join(dir, `${Date.now()}.heapsnapshot`));
  const s = JSON.parse(fs.readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  if (!process.env.KEEP_SNAPSHOT) fs.rmSync(file); else console.log(file);
  const f = s.snapshot.meta.node_fields;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((k) => f.indexOf(k)) as [number, number, number];
  const types = s.snapshot.meta.node_types[0];
  const out = new Map<string, { n: number; size: number }>();
  for (let i = 0; i < s.nodes.length; i += f.length) {
    const type = types[s.nodes[i + iType]!]!;
    const name = s.strings[s.nodes[i + iName]!]!;
    const key = type === 'object' || type === 'closure' || type === 'native' ? `${type} ${name.slice(0, 50)}` : type;
    const a = out.get(key) ?? { n: 0, size: 0 };
    a.n++;
    a.size += s.nodes[i + iSize]!;
    out.set(key, a);
  }
  return out;
}

const warm = await hold(32); // compiled code, lazily loaded modules: not a session's cost
const before = census();
const held = await hold(N);
const after = census();
const rows = [...after].map(([k, a]) => ({ k, n: a.n - (before.get(k)?.n ?? 0), size: a.size - (before.get(k)?.size ?? 0) })).filter((r) => r.size > 0);
rows.sort((a, b) => b.size - a.size);
const total = rows.reduce((t, r) => t + r.size, 0);
console.log(`${held.open} idle ${MODE} sessions: ${(total / 1024 / held.open).toFixed(2)} KiB per session in the heap snapshot (objects, and the array buffers' data as native)`);
console.log('| holder | per session B | count per session |\n|---|---|---|');
for (const r of rows.slice(0, 25)) console.log(`| ${r.k} | ${Math.round(r.size / held.open)} | ${(r.n / held.open).toFixed(2)} |`);
for (const h of [held, warm]) h.c.stdin!.end();
target.kill();
process.exit(0);
