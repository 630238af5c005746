// Checkpoints have one writer: src/train/checkpoint-io.ts writes every model directory (writeModelDir) and
// optimizer state file (writeOptimizerState); the trainer, saveHfCheckpoint, the fp16 export and `clip train`
// call it. A second caller of the safetensors writer is a second answer to "how is a checkpoint written".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from './fixtures.js';

const SRC = join(REPO_ROOT, 'src');
const OWNERS = ['src/io/safetensors.ts', 'src/train/checkpoint-io.ts'];

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (name.endsWith('.ts')) yield p;
  }
}

test('only train/checkpoint-io.ts writes safetensors files', () => {
  const callers: string[] = [];
  for (const file of sources(SRC)) {
    const rel = relative(REPO_ROOT, file);
    if (OWNERS.includes(rel)) continue;
    if (/\bwriteSafetensors(Lazily)?\s*\(/.test(readFileSync(file, 'utf8'))) callers.push(rel);
  }
  assert.deepEqual(callers, []);
});
