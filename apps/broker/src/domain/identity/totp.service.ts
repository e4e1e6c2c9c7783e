import type { Db, DbOrTx } from '../../db/database.ts';
import { TOTP_DEFAULTS, matchTotp, newTotpSecret, qrCodeDataUrl, totpUri, type TotpParams } from '../../providers/directory/totp.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Clock } from '../clock.ts';
import { ConflictError, NotFoundError } from '../errors.ts';
import type { SecretBox } from '../secrets/secret-box.ts';
import type { Actor } from './actor.ts';
import type { MfaRepository, UserTotpRow } from './mfa.repository.ts';
import { hashToken, randomString } from './tokens.ts';

export interface TotpEnrollment {
  secret: string;
  otpauthUri: string;
  qrCode: string;
}

export type TotpVerdict = { ok: true; via: 'code' | 'recovery-code' } | { ok: false; reason: string };

const RECOVERY_CODES = 10;
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** 16 base32 characters (80 bits) in groups of four: strong enough that a SHA-256 of it is a safe hash. */
const RECOVERY_CODE = /^[a-z2-7]{4}(-?[a-z2-7]{4}){3}$/i;

/**
 * The built-in TOTP factor: enrolment (secret sealed with STAGEDOOR_SECRET_KEY, otpauth:// URI and QR
 * code), verification within ±1 step, no reuse of a step (recorded atomically, so across nodes), and
 * one-time recovery codes stored hashed.
 */
export class TotpService {
  constructor(private readonly deps: { db: Db; repo: MfaRepository; secrets: SecretBox; audit: AuditService; clock: Clock }) {}

  async status(userId: string): Promise<{ enrolled: boolean; confirmedAt: Date | null; recoveryCodesLeft: number }> {
    const row = await this.deps.repo.totpOf(userId);
    const confirmed = !!row?.confirmedAt;
    return { enrolled: confirmed, confirmedAt: row?.confirmedAt ?? null, recoveryCodesLeft: confirmed ? await this.deps.repo.recoveryCodesLeft(userId) : 0 };
  }

  async isEnrolled(userId: string, db?: DbOrTx): Promise<boolean> {
    return !!(await this.deps.repo.totpOf(userId, db))?.confirmedAt;
  }

  /**
   * A fresh, unconfirmed secret for the user to scan. An existing confirmed enrolment is kept unless
   * `replaceConfirmed`: a signed-in user must remove it first, proving they hold it.
   */
  async begin(user: { id: string; username: string }, issuer: string, opts: { replaceConfirmed: boolean } = { replaceConfirmed: false }): Promise<TotpEnrollment> {
    const secret = newTotpSecret();
    const sealed = this.deps.secrets.seal(secret, context(user.id));
    const ok = await this.deps.repo.putUnconfirmed({ userId: user.id, secretCiphertext: sealed, ...TOTP_DEFAULTS, now: this.deps.clock.now() }, opts.replaceConfirmed);
    if (!ok) throw new ConflictError('TOTP is already set up for this account: remove it first (with a current code) to enrol another authenticator');
    const otpauthUri = totpUri({ secret, ...TOTP_DEFAULTS, issuer, account: user.username });
    return { secret, otpauthUri, qrCode: await qrCodeDataUrl(otpauthUri) };
  }

  /** The unconfirmed enrolment `begin` made, shown again (after SSO the page that shows it is not the one that started it); null when there is none. */
  async unconfirmed(user: { id: string; username: string }, issuer: string): Promise<TotpEnrollment | null> {
    const row = await this.deps.repo.totpOf(user.id);
    if (!row || row.confirmedAt) return null;
    const secret = this.deps.secrets.open(row.secretCiphertext, context(user.id));
    const otpauthUri = totpUri({ secret, ...TOTP_DEFAULTS, issuer, account: user.username });
    return { secret, otpauthUri, qrCode: await qrCodeDataUrl(otpauthUri) };
  }

  /** Confirm an enrolment with its first code; returns the recovery codes (shown once), or null for a wrong code. */
  async confirm(actor: Actor, userId: string, code: string, tx?: DbOrTx): Promise<string[] | null> {
    const run = async (db: DbOrTx) => {
      const row = await this.deps.repo.totpOf(userId, db);
      if (!row) throw new NotFoundError('TOTP enrolment of user', userId);
      if (row.confirmedAt) throw new ConflictError('TOTP is already confirmed for this account');
      const now = this.deps.clock.now();
      const step = await matchTotp({ ...this.#params(row), code: code.trim(), at: now, afterStep: null });
      if (step === null) return null;
      if (!(await this.deps.repo.confirm(userId, step, now, db))) return null;
      const codes = await this.#newRecoveryCodes(userId, db);
      await this.deps.audit.record(actor, { action: 'mfa.totp_enroll', outcome: 'success', targetType: 'user', targetId: userId }, db);
      return codes;
    };
    return tx ? run(tx) : this.deps.db.transaction(run);
  }

  /** Check a current code or a recovery code for a confirmed enrolment, spending it. */
  async verify(userId: string, code: string): Promise<TotpVerdict> {
    const row = await this.deps.repo.totpOf(userId);
    if (!row?.confirmedAt) return { ok: false, reason: 'TOTP not set up' };
    const now = this.deps.clock.now();
    const given = code.trim();
    if (RECOVERY_CODE.test(given)) {
      return (await this.deps.repo.useRecoveryCode(userId, recoveryHash(given), now)) ? { ok: true, via: 'recovery-code' } : { ok: false, reason: 'unknown or already used recovery code' };
    }
    const params = this.#params(row);
    const step = await matchTotp({ ...params, code: given, at: now, afterStep: row.lastUsedStep });
    if (step === null) {
      const stale = row.lastUsedStep !== null && (await matchTotp({ ...params, code: given, at: now, afterStep: null })) !== null;
      return { ok: false, reason: stale ? 'code already used' : 'wrong code' };
    }
    // The check above read last_used_step; the update decides, so a replay racing on another node loses here.
    return (await this.deps.repo.useStep(userId, step, now)) ? { ok: true, via: 'code' } : { ok: false, reason: 'code already used' };
  }

  /** Remove the user's TOTP (self-service after proving a code, or an admin reset). */
  async remove(actor: Actor, userId: string): Promise<void> {
    await this.deps.db.transaction(async (tx) => {
      if (!(await this.deps.repo.deleteTotp(userId, tx))) throw new NotFoundError('TOTP enrolment of user', userId);
      await this.deps.audit.record(actor, { action: 'mfa.totp_remove', outcome: 'success', targetType: 'user', targetId: userId }, tx);
    });
  }

  async regenerateRecoveryCodes(actor: Actor, userId: string): Promise<string[]> {
    return this.deps.db.transaction(async (tx) => {
      const codes = await this.#newRecoveryCodes(userId, tx);
      await this.deps.audit.record(actor, { action: 'mfa.recovery_codes_regenerate', outcome: 'success', targetType: 'user', targetId: userId }, tx);
      return codes;
    });
  }

  async #newRecoveryCodes(userId: string, db: DbOrTx): Promise<string[]> {
    const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
    await this.deps.repo.replaceRecoveryCodes(userId, codes.map(recoveryHash), this.deps.clock.now(), db);
    return codes;
  }

  #params(row: UserTotpRow): TotpParams {
    return { secret: this.deps.secrets.open(row.secretCiphertext, context(row.userId)), algorithm: row.algorithm as TotpParams['algorithm'], digits: row.digits, periodSeconds: row.periodSeconds };
  }
}

const context = (userId: string) => `user_totp:${userId}`;

function newRecoveryCode(): string {
  return randomString(BASE32, 16).match(/.{4}/g)!.join('-');
}

function recoveryHash(code: string): string {
  return hashToken(code.replace(/[-\s]/g, '').toLowerCase());
}
