// Download progress: bytes, total and rate. On a terminal one live line per file; in logs one line per
// finished file (a live bar would fill CI logs with carriage returns).
export interface DownloadProgress {
  repo: string;
  file: string;
  /** Bytes of the blob on disk so far (including what a resumed download already had). */
  done: number;
  total?: number;
  /** Bytes that were already there when this attempt started (resume). */
  resumedFrom: number;
  /** Bytes per second over this attempt. */
  rate: number;
  finished: boolean;
}

export type ProgressSink = (p: DownloadProgress) => void;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

function stderrSink(): ProgressSink {
  const tty = process.stderr.isTTY === true;
  let last = 0;
  return (p) => {
    const size = p.total !== undefined ? `${formatBytes(p.done)}/${formatBytes(p.total)}` : formatBytes(p.done);
    const resumed = p.resumedFrom ? `, resumed at ${formatBytes(p.resumedFrom)}` : '';
    const line = `${p.repo} ${p.file} ${size} ${formatBytes(p.rate)}/s${resumed}`;
    if (tty) {
      const now = Date.now();
      if (!p.finished && now - last < 100) return;
      last = now;
      process.stderr.write(`\r\x1b[2K${line}${p.finished ? '\n' : ''}`);
    } else if (p.finished) {
      process.stderr.write(`downloaded ${line}\n`);
    }
  };
}

/** true/undefined: stderr; false: silent; a function: yours. */
export function progressSink(opt: boolean | ProgressSink | undefined): ProgressSink | undefined {
  if (typeof opt === 'function') return opt;
  return opt === false ? undefined : stderrSink();
}

/** Tracks one attempt at one file and reports to the sink. */
export class ByteProgress {
  private readonly start = Date.now();
  constructor(private readonly sink: ProgressSink | undefined, private readonly base: Omit<DownloadProgress, 'done' | 'rate' | 'finished'>) {}

  update(done: number, finished = false): void {
    if (!this.sink) return;
    const secs = Math.max((Date.now() - this.start) / 1000, 1e-3);
    this.sink({ ...this.base, done, rate: (done - this.base.resumedFrom) / secs, finished });
  }
}
