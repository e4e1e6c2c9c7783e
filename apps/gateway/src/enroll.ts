import fs from 'node:fs';
import path from 'node:path';
import { EnrolledGateway } from '@stagedoor/contract';

/** What a gateway keeps between starts: its identity and control-channel credential (mode 0600). */
export interface GatewayState {
  gatewayId: string;
  name: string;
  cluster: string;
  /** What clients dial, as the admin's enrolment record said (for the log; the broker holds it). */
  publicAddress?: string;
  credential: string;
}

export class EnrollmentError extends Error {
  override name = 'EnrollmentError';
}

const STATE_FILE = 'gateway.json';

export function readState(dataDir: string): GatewayState | null {
  const file = path.join(dataDir, STATE_FILE);
  if (!fs.existsSync(file)) return null;
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as GatewayState;
  if (!state.credential || !state.gatewayId) throw new EnrollmentError(`${file} is damaged: remove it and enrol again`);
  return state;
}

export function writeState(dataDir: string, state: GatewayState): void {
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, STATE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/**
 * Trade the one-time token for a credential at the first broker that answers. A refusal (bad,
 * used or expired token; a name taken) is final and says why; an unreachable node moves on. The
 * address clients dial is not ours to say: it comes back from the admin's enrolment record.
 */
export async function enroll(
  brokerUrls: string[],
  body: { token: string; name: string; portRangeStart: number; portRangeEnd: number; version: string },
): Promise<GatewayState> {
  const failures: string[] = [];
  for (const base of brokerUrls) {
    let res: Response;
    try {
      res = await fetch(new URL('/api/v1/gateways/enroll', base), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      failures.push(`${base}: ${(err as Error).message}`);
      continue;
    }
    const text = await res.text();
    if (res.status !== 201) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
      } catch {
        // not JSON
      }
      throw new EnrollmentError(`enrolment refused by ${base} (${res.status}): ${message}`);
    }
    const enrolled = EnrolledGateway.parse(JSON.parse(text));
    return { gatewayId: enrolled.gatewayId, name: enrolled.name, cluster: enrolled.cluster, publicAddress: enrolled.publicAddress, credential: enrolled.credential };
  }
  throw new EnrollmentError(`no broker reachable for enrolment: ${failures.join('; ')}`);
}
