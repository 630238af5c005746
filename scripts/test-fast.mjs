// `npm run test:fast`: the edit-loop subset of `npm test`. Everything except the files below, which are slow by
// design (soak, crash and learning runs, hostile inputs through child processes); CI always runs them all.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

export const SLOW = {
  'server-soak.test.js': '200 concurrent clients for 60 s',
  'index-crash.test.js': 'clip index killed 20 times at random moments',
  'fuzz.test.js': 'every hostile input through the real CLI in a child process',
  'hostile-checkpoints.test.js': 'each hostile checkpoint opened in a child process',
  'train-learns.test.js': 'a small CLIP trained until it retrieves held-out renders',
  'embed-job.test.js': '2,000-image jobs killed and resumed',
  'fleet.test.js': '2,000 images through 3 queue workers, one SIGKILLed',
  'queue.test.js': 'queue workers SIGKILLed mid-run, jobs retried until they land in the failed list',
};

const files = readdirSync('dist/test').filter((f) => f.endsWith('.test.js') && !(f in SLOW)).sort();
console.log(`test:fast: ${files.length} files; left to npm test: ${Object.entries(SLOW).map(([f, why]) => `${f} (${why})`).join(', ')}`);
// Two files at a time: most tests wait on child processes, servers or I/O (node's default on 2 cores is one).
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files.map((f) => `dist/test/${f}`)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
