import { generate, generateSecret, generateURI, verify } from 'otplib';
import QRCode from 'qrcode';

/**
 * TOTP (RFC 6238) through otplib and QR codes through qrcode: the only code that imports them. The
 * parameters are the ones every authenticator app understands: SHA-1, 6 digits, 30 seconds.
 */
export interface TotpParams {
  secret: string;
  algorithm: 'SHA1' | 'SHA256' | 'SHA512';
  digits: number;
  periodSeconds: number;
}

export const TOTP_DEFAULTS = { algorithm: 'SHA1', digits: 6, periodSeconds: 30 } as const;

/** A new base32 secret of 20 random bytes (160 bits, RFC 4226's recommendation). */
export function newTotpSecret(): string {
  return generateSecret({ length: 20 });
}

export function totpUri(p: TotpParams & { issuer: string; account: string }): string {
  return generateURI({
    issuer: p.issuer,
    label: p.account,
    secret: p.secret,
    algorithm: lower(p.algorithm),
    digits: p.digits as 6 | 7 | 8,
    period: p.periodSeconds,
  });
}

export function qrCodeDataUrl(text: string): Promise<string> {
  return QRCode.toDataURL(text, { errorCorrectionLevel: 'M', margin: 2, scale: 6 });
}

/**
 * The time step a code belongs to when it is valid at `at` within ±1 step and later than
 * `afterStep`; null otherwise. The caller still records the step atomically to refuse a replay that
 * races this check on another node.
 */
export async function matchTotp(p: TotpParams & { code: string; at: Date; afterStep: number | null }): Promise<number | null> {
  if (!new RegExp(`^\\d{${p.digits}}$`).test(p.code)) return null;
  const epoch = Math.floor(p.at.getTime() / 1000);
  try {
    const result = await verify({
      secret: p.secret,
      token: p.code,
      algorithm: lower(p.algorithm),
      digits: p.digits as 6 | 7 | 8,
      period: p.periodSeconds,
      epoch,
      epochTolerance: p.periodSeconds,
      ...(p.afterStep !== null ? { afterTimeStep: p.afterStep } : {}),
    });
    return result.valid && 'timeStep' in result ? result.timeStep : null;
  } catch {
    // otplib refuses an afterTimeStep beyond the window (a clock that went back): no code is valid then.
    return null;
  }
}

/** The code for `at`: what an authenticator app would show. For tests and the enrollment check. */
export function totpCode(p: TotpParams & { at: Date }): Promise<string> {
  return generate({
    secret: p.secret,
    algorithm: lower(p.algorithm),
    digits: p.digits as 6 | 7 | 8,
    period: p.periodSeconds,
    epoch: Math.floor(p.at.getTime() / 1000),
  });
}

function lower(a: TotpParams['algorithm']): 'sha1' | 'sha256' | 'sha512' {
  return a.toLowerCase() as 'sha1' | 'sha256' | 'sha512';
}
