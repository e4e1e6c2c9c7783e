import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '../ports.ts';
import { spawnProcess } from '../processes.ts';
import { makeTestCa, requireBinary, type TestCa } from './tls.ts';

export interface Slapd {
  url: string;
  port: number;
  suffix: string;
  adminDn: string;
  adminPassword: string;
  ca: TestCa;
  /** Run an LDIF change (ldapmodify) as the directory admin. */
  modify(ldif: string): void;
  stop(): Promise<void>;
}

/**
 * An OpenLDAP server of its own: a slapd.conf and an MDB database in a temp dir, loaded with `ldif`
 * by slapadd, serving ldap:// (StartTLS with a test CA) on a free loopback port. Independent of any
 * slapd that Debian's package may have configured and started.
 */
export async function startSlapd(opts: { suffix: string; ldif: string }): Promise<Slapd> {
  const slapd = requireBinary('slapd', 'slapd');
  const slapadd = requireBinary('slapadd', 'slapd');
  const ldapmodify = requireBinary('ldapmodify', 'ldap-utils');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-slapd-'));
  try {
    const ca = makeTestCa(dir, { dns: ['localhost'], ips: ['127.0.0.1'] });
    fs.mkdirSync(path.join(dir, 'db'));
    const adminDn = `cn=admin,${opts.suffix}`;
    const adminPassword = 'slapd-admin-secret';
    const conf = path.join(dir, 'slapd.conf');
    fs.writeFileSync(
      conf,
      [
        ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
        'modulepath /usr/lib/ldap',
        'moduleload back_mdb',
        `pidfile ${dir}/slapd.pid`,
        `TLSCACertificateFile ${ca.caFile}`,
        `TLSCertificateFile ${ca.certFile}`,
        `TLSCertificateKeyFile ${ca.keyFile}`,
        'database mdb',
        'maxsize 33554432',
        `suffix "${opts.suffix}"`,
        `rootdn "${adminDn}"`,
        `rootpw ${adminPassword}`,
        `directory ${dir}/db`,
        // Passwords are for binding only; bound users (the service account) read everything else.
        'access to attrs=userPassword by anonymous auth by self write by * none',
        'access to * by users read by * none',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(dir, 'data.ldif'), opts.ldif);
    execFileSync(slapadd, ['-f', conf, '-l', path.join(dir, 'data.ldif')], { stdio: ['ignore', 'ignore', 'pipe'] });
    const port = await freePort();
    const proc = spawnProcess(slapd, ['-d', '0', '-h', `ldap://127.0.0.1:${port}/`, '-f', conf], {});
    await waitFor('slapd to listen', () => canConnect(port), 30_000, 50).catch((err) => {
      throw new Error(`${(err as Error).message}\n${proc.stderr.join('\n')}`);
    });
    return {
      url: `ldap://127.0.0.1:${port}`,
      port,
      suffix: opts.suffix,
      adminDn,
      adminPassword,
      ca,
      modify: (ldif) => {
        execFileSync(ldapmodify, ['-x', '-H', `ldap://127.0.0.1:${port}`, '-D', adminDn, '-w', adminPassword], { input: ldif, stdio: ['pipe', 'ignore', 'pipe'] });
      },
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

export function canConnect(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
