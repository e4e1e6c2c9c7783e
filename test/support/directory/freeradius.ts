import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../ports.ts';
import { spawnProcess } from '../processes.ts';
import { requireBinary } from './tls.ts';

export interface FreeRadius {
  host: string;
  port: number;
  secret: string;
  log: string[];
  stop(): Promise<void>;
}

/**
 * A FreeRADIUS 3 server of its own: a minimal radiusd.conf (pap, files, and an unlang policy for
 * challenges) generated in a temp dir, in the foreground on a free UDP port of 127.0.0.1. The client
 * entry is Debian's default (`require_message_authenticator = no`), so a request signed with a wrong
 * secret but without Message-Authenticator still gets an (unverifiable) answer.
 *
 * `users` is a FreeRADIUS users file; `authorize` is unlang run before it (e.g. to send challenges).
 */
export async function startFreeRadius(opts: { secret: string; users: string; authorize?: string; messageAuthenticator?: boolean }): Promise<FreeRadius> {
  const freeradius = requireBinary('freeradius', 'freeradius');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-radius-'));
  try {
    const port = await freeUdpPort();
    fs.mkdirSync(path.join(dir, 'log'));
    fs.mkdirSync(path.join(dir, 'run'));
    fs.writeFileSync(path.join(dir, 'dictionary'), '$INCLUDE /usr/share/freeradius/dictionary\n');
    fs.writeFileSync(path.join(dir, 'users'), opts.users);
    fs.writeFileSync(path.join(dir, 'radiusd.conf'), radiusdConf(dir, port, opts.secret, opts.authorize ?? '', opts.messageAuthenticator ?? true));
    // radiusd refuses world-writable config; mkdtemp gives 0700 already.
    execFileSync(freeradius, ['-C', '-d', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const proc = spawnProcess(freeradius, ['-f', '-l', 'stdout', '-d', dir], {});
    await waitFor('FreeRADIUS to be ready', () => proc.stdout.some((l) => l.includes('Ready to process requests')), 30_000, 50).catch((err) => {
      throw new Error(`${(err as Error).message}\n${proc.stdout.join('\n')}\n${proc.stderr.join('\n')}`);
    });
    return {
      host: '127.0.0.1',
      port,
      secret: opts.secret,
      log: proc.stdout,
      stop: async () => {
        await proc.stop();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A UDP port on 127.0.0.1 that was free a moment ago (nothing answers there: ICMP port unreachable). */
export function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** A UDP socket that receives and never answers: a RADIUS server that has gone silent. */
export function silentUdpServer(): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    let n = 0;
    const s = dgram.createSocket('udp4');
    s.on('message', () => n++);
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve({ port: s.address().port, received: () => n, close: () => new Promise((r) => s.close(() => r())) }));
  });
}

function radiusdConf(dir: string, port: number, secret: string, authorize: string, messageAuthenticator: boolean): string {
  // FreeRADIUS 3.2.1 (Debian 12) signs a reply with a Message-Authenticator when the reply list holds
  // one: what 3.2.5 and later do by themselves since BlastRADIUS. Without it: an unpatched server.
  const sign = messageAuthenticator ? '\t\tupdate reply {\n\t\t\t&Message-Authenticator := 0x00\n\t\t}\n' : '';
  return `
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = ${dir}/log
raddbdir = ${dir}
radacctdir = \${logdir}/radacct
name = freeradius
confdir = \${raddbdir}
modconfdir = \${confdir}/mods-config
certdir = \${confdir}/certs
cadir = \${confdir}/certs
run_dir = ${dir}/run
db_dir = \${raddbdir}
libdir = /usr/lib/freeradius
pidfile = \${run_dir}/\${name}.pid
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {
	destination = stdout
	colourise = no
	auth = yes
	auth_badpass = no
	auth_goodpass = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
client loopback {
	ipaddr = 127.0.0.1
	secret = "${secret.replace(/["\\]/g, '\\$&')}"
	require_message_authenticator = no
	nas_type = other
}
thread pool {
	start_servers = 1
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}
modules {
	always reject {
		rcode = reject
	}
	always handled {
		rcode = handled
	}
	always ok {
		rcode = ok
	}
	pap {
		normalise = yes
	}
	files {
		filename = \${confdir}/users
	}
}
instantiate {
}
policy {
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = ${port}
	}
	authorize {
${sign}${authorize}
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
}
`;
}
