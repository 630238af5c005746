// A one-line progress bar on stderr with rate and ETA; silent when stderr is not a terminal
// (scripts and CI logs) unless forced.
export class Progress {
  private readonly start = Date.now();
  private last = 0;
  constructor(private readonly label: string, private readonly enabled = process.stderr.isTTY === true) {}

  update(done: number, total: number): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (done < total && now - this.last < 100) return;
    this.last = now;
    const secs = (now - this.start) / 1000;
    const rate = done / Math.max(secs, 1e-3);
    const eta = rate > 0 ? (total - done) / rate : 0;
    const width = 24;
    const fill = total ? Math.round((done / total) * width) : 0;
    const bar = '█'.repeat(fill) + '░'.repeat(width - fill);
    process.stderr.write(`\r${this.label} ${bar} ${done}/${total} ${rate.toFixed(1)}/s ETA ${eta.toFixed(0)}s `);
    if (done >= total) process.stderr.write('\n');
  }
}
