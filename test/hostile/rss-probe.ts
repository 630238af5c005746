// Preloaded into a CLI child (`node --import`) by the hostile-input harness: on exit it appends the process's
// peak RSS to the file named by CLIP_RSS_PROBE, so the harness measures memory without GNU time or /proc polling.
import { appendFileSync } from 'node:fs';

const out = process.env.CLIP_RSS_PROBE;
if (out) {
  process.on('exit', () => {
    // resourceUsage().maxRSS is in kilobytes.
    appendFileSync(out, `${process.resourceUsage().maxRSS}\n`);
  });
}
