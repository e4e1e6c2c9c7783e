import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config/config.ts';

describe('config', () => {
  it('has working defaults: embedded database under ./.stagedoor, port 8080 on loopback', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.database.kind).toBe('pglite');
    expect(c.dataDir.endsWith('.stagedoor')).toBe(true);
  });

  it('uses PostgreSQL when DATABASE_URL is set', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://u@db:5432/stagedoor', STAGEDOOR_DB_POOL_SIZE: '4' });
    expect(c.database).toEqual({ kind: 'postgres', url: 'postgres://u@db:5432/stagedoor', poolSize: 4 });
  });

  it.each([
    ['PORT', 'not-a-port'],
    ['PORT', '70000'],
    ['DATABASE_URL', 'mysql://x'],
    ['STAGEDOOR_LOG_LEVEL', 'loud'],
    ['STAGEDOOR_SECRET_KEY', 'too-short'],
    ['STAGEDOOR_ADMIN_PASSWORD', 'short'],
    ['STAGEDOOR_SESSION_IDLE_MINUTES', '-5'],
    ['STAGEDOOR_SECRET_KEY_PREVIOUS', `${'ab'.repeat(32)},short`],
    ['STAGEDOOR_METRICS_LISTEN', '9464'],
    ['STAGEDOOR_METRICS_LISTEN', '127.0.0.1:99999'],
    ['STAGEDOOR_METRICS_TOKEN', 'short'],
    ['STAGEDOOR_AUDIT_RETENTION_DAYS', '-1'],
  ])('rejects %s=%s naming the variable', (variable, value) => {
    let err: unknown;
    try {
      loadConfig({ [variable]: value });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(variable);
    expect((err as ConfigError).message.split('\n')).toHaveLength(1);
  });

  it('names every bad variable at once and never echoes a secret', () => {
    try {
      loadConfig({ PORT: 'x', STAGEDOOR_ADMIN_PASSWORD: 'tiny' });
      expect.unreachable();
    } catch (e) {
      const err = e as ConfigError;
      expect(err.problems.map((p) => p.variable).sort()).toEqual(['PORT', 'STAGEDOOR_ADMIN_PASSWORD']);
      expect(err.message).not.toContain('tiny');
    }
  });

  it('accepts a 32-byte secret key as hex or base64', () => {
    const hex = 'ab'.repeat(32);
    expect(loadConfig({ STAGEDOOR_SECRET_KEY: hex }).secretKey?.length).toBe(32);
    expect(loadConfig({ STAGEDOOR_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') }).secretKey?.length).toBe(32);
  });

  it('takes previous secret keys as a list, and never echoes one', () => {
    const [a, b] = ['cd'.repeat(32), Buffer.alloc(32, 9).toString('base64')];
    expect(loadConfig({ STAGEDOOR_SECRET_KEY_PREVIOUS: `${a}, ${b}` }).previousSecretKeys.map((k) => k.length)).toEqual([32, 32]);
    expect(() => loadConfig({ STAGEDOOR_SECRET_KEY_PREVIOUS: 'not-a-key-at-all' })).toThrow(/^(?!.*not-a-key-at-all)/);
  });

  it('audit: kept 400 days and 20 refusal rows per address and minute by default; 0 days keeps the trail forever', () => {
    expect(loadConfig({}).audit).toEqual({ retentionDays: 400, refusalsPerAddressPerMinute: 20 });
    expect(loadConfig({ STAGEDOOR_AUDIT_RETENTION_DAYS: '0' }).audit.retentionDays).toBe(0);
  });

  it('metrics: not served by default; a listener of their own and a token when set', () => {
    expect(loadConfig({}).metrics).toEqual({ listen: null, token: null });
    expect(loadConfig({ STAGEDOOR_METRICS_LISTEN: '[::1]:9464', STAGEDOOR_METRICS_TOKEN: 'x'.repeat(16) }).metrics).toEqual({ listen: { host: '::1', port: 9464 }, token: 'x'.repeat(16) });
  });
});
