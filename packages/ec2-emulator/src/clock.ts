// Emulated time: an injectable base clock plus an offset that fast-forward moves. Every
// state transition is computed from it, so tests move time instead of sleeping.

export class EmulatorClock {
  private offsetMs: number;

  constructor(
    private readonly base: () => number = Date.now,
    offsetMs = 0,
  ) {
    this.offsetMs = offsetMs;
  }

  now(): number {
    return this.base() + this.offsetMs;
  }

  advance(ms: number): number {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('time can only move forward');
    this.offsetMs += ms;
    return this.now();
  }

  get offset(): number {
    return this.offsetMs;
  }

  set offset(ms: number) {
    this.offsetMs = ms;
  }
}
