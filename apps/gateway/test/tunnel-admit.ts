import { REFUSAL_MESSAGES, type Admit, type Admitted } from '../src/routed/admission.ts';

/** What a table admission records per token: its target, and what the session registered and reported. */
export interface AdmitTable {
  targets: Map<string, { host: string; port: number }>;
  ended: Map<string, { reason: string; bytesUp: number; bytesDown: number }>;
  closers: Map<string, (reason: string) => void>;
  counters: Map<string, () => { bytesUp: number; bytesDown: number }>;
}

export function admitTable(): AdmitTable {
  return { targets: new Map(), ended: new Map(), closers: new Map(), counters: new Map() };
}

/** The routed modes' admission as a table of token → target (no broker): the first end per token is kept. */
export function tableAdmit(table: AdmitTable): Admit {
  return async (_listener, token) => {
    const target = table.targets.get(token);
    if (!target) return { ok: false, reason: 'no-grant', message: REFUSAL_MESSAGES['no-grant'] };
    const admitted: Admitted = {
      ok: true,
      grantId: `grant-${token.slice(0, 8)}`,
      target,
      onClose: (close) => void table.closers.set(token, close),
      countBytes: (read) => void table.counters.set(token, read),
      ended: (o) => void (table.ended.has(token) || table.ended.set(token, o)),
    };
    return admitted;
  };
}
