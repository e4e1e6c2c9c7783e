import { describe, expect, it } from 'vitest';
import { generatePassword, randomString } from '../../src/domain/identity/tokens.ts';

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';

/** How often each character of `alphabet` occurs in `samples`. */
function counts(alphabet: string, samples: string[]): number[] {
  const n = new Map<string, number>();
  for (const s of samples) for (const c of s) n.set(c, (n.get(c) ?? 0) + 1);
  expect([...n.keys()].every((c) => alphabet.includes(c)), 'only characters of the alphabet').toBe(true);
  return [...alphabet].map((c) => n.get(c) ?? 0);
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('generated passwords', () => {
  it('a generated password is not biased towards part of its alphabet, no modulo bias an attacker could weight guesses by', () => {
    // 400,000 characters: ~7,100 per letter, so the mean of 32 letters varies by ~0.2 %. A byte modulo
    // 56 makes the first 32 letters 25 % more likely than the last 24; 5 % is far from both.
    const samples = Array.from({ length: 20_000 }, () => generatePassword());
    expect(samples.every((p) => p.length === 20)).toBe(true);
    const perLetter = counts(ALPHABET, samples);
    expect(perLetter.every((n) => n > 0)).toBe(true);
    const ratio = mean(perLetter.slice(0, 32)) / mean(perLetter.slice(32));
    expect(ratio).toBeGreaterThan(0.95);
    expect(ratio).toBeLessThan(1.05);
  });

  it('randomString draws every character of an alphabet of any size', () => {
    const samples = Array.from({ length: 2_000 }, () => randomString('abc', 30));
    const perLetter = counts('abc', samples);
    for (const n of perLetter) expect(Math.abs(n / 20_000 - 1)).toBeLessThan(0.05);
  });
});
