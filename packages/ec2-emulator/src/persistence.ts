// Saves the state to `statePath`: debounced after changes, and once more on close.
// Writes go to a temporary file that is renamed over the old one, so a crash mid-write
// never leaves a truncated state behind.

import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Snapshot } from './snapshot.ts';

export async function readSnapshotFile(path: string): Promise<Snapshot | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as Snapshot;
  } catch (error) {
    throw new Error(`EC2 emulator state file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

export class StatePersistence {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  constructor(
    private readonly path: string,
    private readonly snapshot: () => Snapshot,
    private readonly debounceMs: number,
    private readonly onError: (error: Error) => void,
  ) {}

  /** Notes a change; the state is written once changes pause for `debounceMs`. */
  schedule(): void {
    this.dirty = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((error: Error) => this.onError(error));
    }, this.debounceMs);
    this.timer.unref?.();
  }

  /** Writes now if anything changed; writes are queued so they never overlap. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.dirty) return this.writing;
    this.dirty = false;
    const json = JSON.stringify(this.snapshot());
    this.writing = this.writing.catch(() => undefined).then(() => this.write(json));
    return this.writing;
  }

  private async write(json: string): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const temporary = `${this.path}.${process.pid}.tmp`;
    // The owner's alone: the state names instances, addresses and user data (the dev sandbox keeps it in the data directory).
    await writeFile(temporary, json, { encoding: 'utf8', mode: 0o600 });
    await rename(temporary, this.path);
  }
}
