// The bundled default model (models/emoji-clip): small enough to ship, used when --model is not given,
// and right on the example drawings it was never trained on. Needs nothing from ../shared.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { BUNDLED_MODELS, DEFAULT_MODEL } from '../src/hub/bundled.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { CLIP_BIN, REPO_ROOT } from './fixtures.js';

const BIN = CLIP_BIN;
const EXAMPLES = ['car', 'pizza', 'red-heart', 'smiley', 'sun'].map((n) => join(REPO_ROOT, 'examples', `${n}.png`));
const LABELS = 'dog,cat,pizza,red heart,sun,automobile,grinning face,house,tree,star';
const EXPECTED = ['automobile', 'pizza', 'red heart', 'grinning face', 'sun'];

test('the bundled model is at most 25 MB, stored as float16, with its own tokenizer and white background', () => {
  const dir = BUNDLED_MODELS[DEFAULT_MODEL]!.dir;
  const size = statSync(join(dir, 'model.safetensors')).size;
  assert.ok(size <= 25 * 2 ** 20, `model.safetensors is ${size} bytes`);
  const header = readFileSync(join(dir, 'model.safetensors'));
  const meta = JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString('utf8'));
  const dtypes = new Set(Object.entries(meta).filter(([k]) => k !== '__metadata__').map(([, v]) => (v as { dtype: string }).dtype));
  assert.deepEqual([...dtypes], ['F16']);
  const tok = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8'));
  assert.equal(tok.model.type, 'BPE');
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'preprocessor_config.json'), 'utf8')).background_color, [255, 255, 255]);
});

test('clip classify without --model uses the bundled model and names the example drawings', () => {
  const r = spawnSync(process.execPath, [BIN, 'classify', '--labels', LABELS, ...EXAMPLES, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { image: string; label: string; scores: Record<string, number> }[];
  assert.deepEqual(out.map((o) => o.label), EXPECTED);
  for (const o of out) assert.ok(Math.abs(Object.values(o.scores).reduce((a, b) => a + b, 0) - 1) < 1e-4);
});

test('ClipModel.load() with no argument is the bundled model; fp16 storage loads as float32 features', async () => {
  const m = await ClipModel.load();
  try {
    assert.equal(m.checkpoint.path, BUNDLED_MODELS[DEFAULT_MODEL]!.dir);
    const [a, b] = await m.encodeTexts(['pizza', 'an emoji of pizza']);
    const [img] = await m.encodeImages([EXAMPLES[1]!]);
    const cos = (x: Float32Array, y: Float32Array) => x.reduce((s, v, i) => s + v * y[i]!, 0);
    assert.ok(Math.abs(cos(a!, a!) - 1) < 1e-5);
    assert.ok(cos(img!.embedding!, a!) > cos(img!.embedding!, (await m.encodeTexts(['dog']))[0]!), 'pizza image closer to "pizza" than "dog"');
    assert.ok(cos(a!, b!) > 0.5, 'a label and its prompt agree');
  } finally {
    await m.release();
  }
});
