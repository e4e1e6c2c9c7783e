import { describe, expect, it } from 'vitest';
import { createLog } from '../src/log.ts';

describe('the gateway log (JSON lines)', () => {
  const capture = (level: Parameters<typeof createLog>[0], base?: Record<string, unknown>) => {
    const lines: Record<string, unknown>[] = [];
    return { lines, log: createLog(level, base, (l) => lines.push(JSON.parse(l) as Record<string, unknown>)) };
  };

  it('writes a line per call at or above its level, with the base fields, the fields and the message', () => {
    const { lines, log } = capture('info', { service: 'gateway' });
    log.debug({ a: 1 }, 'hidden');
    log.info({ a: 1 }, 'shown');
    log.error({ b: 'x' }, 'also shown');
    expect(lines.map((l) => [l.level, l.service, l.msg])).toEqual([
      [30, 'gateway', 'shown'],
      [50, 'gateway', 'also shown'],
    ]);
    expect(lines[0]).toMatchObject({ a: 1 });
    expect(Number.isNaN(Date.parse(String(lines[0]!.time)))).toBe(false);
  });

  it("a child adds its fields to every line (a later child's win) and keeps the parent's level", () => {
    const { lines, log } = capture('warn', { service: 'gateway' });
    const session = log.child({ listener: 'tunnel', client: '10.0.0.1' }).child({ grant: 'g1', client: '10.0.0.2' });
    session.info({}, 'below the level');
    session.warn({ reason: 'used' }, 'tunnel refused');
    log.warn({}, 'the parent has no session fields');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ service: 'gateway', listener: 'tunnel', client: '10.0.0.2', grant: 'g1', reason: 'used', msg: 'tunnel refused' });
    expect(lines[1]).not.toHaveProperty('grant');
  });

  it('an error is written as its message and code, not its stack', () => {
    const { lines, log } = capture('info');
    log.warn({ err: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }, 'target unreachable');
    expect(lines[0]!.err).toEqual({ message: 'connect ECONNREFUSED', code: 'ECONNREFUSED' });
  });

  it('silent writes nothing', () => {
    const { lines, log } = capture('silent');
    log.error({}, 'nothing');
    expect(lines).toEqual([]);
  });
});
