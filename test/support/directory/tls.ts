import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCa {
  /** PEM of the CA: what an admin pastes into the auth server's caCertificate. */
  caPem: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * A throwaway CA and a server certificate it signed (EC P-256, valid two days) made with the openssl
 * command in `dir`: the directory servers under test present the certificate, the broker trusts the CA.
 */
export function makeTestCa(dir: string, server: { dns: string[]; ips: string[] }): TestCa {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Stagedoor test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${server.dns[0] ?? server.ips[0]}`]);
  const san = [...server.dns.map((d) => `DNS:${d}`), ...server.ips.map((i) => `IP:${i}`)].join(',');
  fs.writeFileSync(path.join(dir, 'server.ext'), `subjectAltName=${san}\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n`);
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
  // Samba refuses a private key that others may read.
  fs.chmodSync(path.join(dir, 'server.key'), 0o600);
  return { caPem: fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'), caFile: path.join(dir, 'ca.pem'), certFile: path.join(dir, 'server.pem'), keyFile: path.join(dir, 'server.key') };
}

/** Fail with the package to install when a server binary is missing, rather than skipping the test. */
export function requireBinary(name: string, debianPackage: string): string {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin'])) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  throw new Error(`${name} not found: apt-get install -y ${debianPackage} (.ci/run installs it)`);
}
