/**
 * Reading `xev -event keyboard` output: the browser session tests record what keys reach an X display
 * (xev on the root window, line-buffered with stdbuf).
 */

/** The key names xev printed for KeyPress events, in order (its output as lines). */
export function pressed(lines: string[]): string[] {
  const keys: string[] = [];
  let inPress = false;
  for (const line of lines) {
    if (/^\S/.test(line)) inPress = line.startsWith('KeyPress');
    const m = inPress ? /\(keysym 0x[0-9a-f]+, ([^)]+)\)/.exec(line) : null;
    if (m) {
      keys.push(m[1]!);
      inPress = false;
    }
  }
  return keys;
}
