/**
 * The SSH host keys this browser accepted, by desktop name (ADR 0029: trust on first use, remembered
 * per browser, when no key is registered for the workstation). Fingerprints are public: local
 * storage is fine for them.
 */
const KEY = 'stagedoor.ssh-host-keys';

export type HostKeyCheck = { state: 'same' } | { state: 'new' } | { state: 'changed'; previous: string };

function load(): Record<string, string> {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(KEY) ?? '{}');
    return v && typeof v === 'object' ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

export function hostKeyCheck(desktop: string, algorithm: string, fingerprint: string): HostKeyCheck {
  const previous = load()[desktop];
  if (previous === undefined) return { state: 'new' };
  return previous === `${algorithm} ${fingerprint}` ? { state: 'same' } : { state: 'changed', previous };
}

export function rememberHostKey(desktop: string, algorithm: string, fingerprint: string): void {
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...load(), [desktop]: `${algorithm} ${fingerprint}` }));
  } catch {
    // storage full or refused: the key is asked about again next time
  }
}
