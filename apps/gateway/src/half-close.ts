import { halfCloseMs } from './native-relay.ts';

/**
 * A half-closed session relayed in JavaScript: `end` runs once `moved` has not changed for the bound
 * (native-relay.ts `halfCloseMs`; the native relay's linger.c keeps the same). Checked when the timer
 * fires rather than moved on every read, so a session ends between one and two bounds after its last
 * byte. The timer is the owner's to clear at the session's end; null when there is no bound.
 */
export function boundHalfClose<T>(owner: T, moved: (owner: T) => number, end: (owner: T) => void): NodeJS.Timeout | null {
  const ms = halfCloseMs();
  if (ms <= 0) return null;
  let mark = moved(owner);
  const timer = setTimeout(function check() {
    const now = moved(owner);
    if (now === mark) return end(owner);
    mark = now;
    timer.refresh();
  }, ms);
  timer.unref();
  return timer;
}
