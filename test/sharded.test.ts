// Sharded checkpoints (`model.safetensors.index.json`, `pytorch_model.bin.index.json`): hf-clip-tiny split
// into three shards embeds bit for bit like the single file, and hostile indexes are refused by name.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClipModel } from '../src/runtime/clip-model.js';
import { openCheckpoint } from '../src/models/checkpoint.js';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import { IO_LIMITS } from '../src/io/limits.js';
import { parseShardIndex, ShardedSource } from '../src/io/sharded.js';
import { loadTorchCheckpoint } from '../src/io/torch.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { META, writeShardedHfClip } from './sharded-fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'clip-sharded-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const IMAGES = ['astronaut.png', 'chelsea.png', 'coffee.png'].map((f) => fixture('common', 'images', f));
const TEXTS = ['a photo of an astronaut', 'a cat', 'a cup of coffee'];

async function embed(dir: string): Promise<number[][]> {
  const m = await ClipModel.load(dir);
  try {
    const imgs = (await m.encodeImages(IMAGES, { normalize: false })).map((r) => Array.from(r.embedding!));
    const txts = (await m.encodeTexts(TEXTS, { normalize: false })).map((e) => Array.from(e));
    return [...imgs, ...txts];
  } finally {
    await m.release();
  }
}

test('hf-clip-tiny in three safetensors shards embeds bit-identically to the single file', { skip: SKIP_FIXTURES }, async () => {
  const dir = writeShardedHfClip(join(tmp, 'three'));
  const ck = openCheckpoint(dir);
  assert.equal(ck.family, 'hf-clip');
  // The ONNX cache must key on every shard, not only on the index.
  const files = (ck.image as { source: { files: string[] } }).source.files;
  assert.equal(files.filter((f) => /model-0000\d-of-00003\.safetensors$/.test(f)).length, 3, files.join(', '));
  assert.deepEqual(await embed(dir), await embed(fixture('hf-clip-tiny')));
  // The index itself given as the model path works too.
  assert.equal(openCheckpoint(join(dir, 'model.safetensors.index.json')).family, 'hf-clip');
});

test('a pytorch_model.bin.index.json with .bin shards loads like the single file', { skip: SKIP_FIXTURES }, async () => {
  const dir = join(tmp, 'bin');
  mkdirSync(dir);
  for (const f of META) copyFileSync(fixture('hf-clip-tiny', f), join(dir, f));
  const shard = 'pytorch_model-00001-of-00001.bin';
  copyFileSync(fixture('pickles', 'hf-clip-tiny-pytorch_model.bin'), join(dir, shard));
  const bin = loadTorchCheckpoint(join(dir, shard));
  const weightMap = Object.fromEntries(bin.keys().map((k) => [k, shard]));
  bin.close();
  writeFileSync(join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ weight_map: weightMap }));
  assert.deepEqual(await embed(dir), await embed(fixture('hf-clip-tiny')));
});

/** A three-shard copy whose index (or shards) `damage` spoils; returns what opening it throws. */
function refusal(name: string, damage: (dir: string, wm: Record<string, string>) => void): Error {
  const dir = join(tmp, name);
  let seen: Record<string, string> = {};
  writeShardedHfClip(dir, 3, (wm) => { seen = wm; });
  damage(dir, seen);
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: seen }));
  try {
    openCheckpoint(dir);
  } catch (e) {
    return e as Error;
  }
  assert.fail(`${name}: the damaged checkpoint loaded`);
}

test('hostile shard indexes are refused with the index, the tensor and the shard named', { skip: SKIP_FIXTURES }, () => {
  const index = /model\.safetensors\.index\.json/;
  // A shard file that is not there.
  let e = refusal('missing', (dir) => rmSync(join(dir, 'model-00002-of-00003.safetensors')));
  assert.match(e.message, index);
  assert.match(e.message, /shard model-00002-of-00003\.safetensors is missing/);
  // Names that would reach outside the directory: a parent path, an absolute path, a subfolder, a hidden file.
  for (const bad of ['../model-00001-of-00003.safetensors', '/etc/passwd.bin', 'sub/x.safetensors', '.hidden.safetensors', 'x.json']) {
    e = refusal(`bad-${Buffer.from(bad).toString('hex')}`, (_dir, wm) => { wm['logit_scale'] = bad; });
    assert.match(e.message, index, bad);
    assert.match(e.message, /weight_map\["logit_scale"\]: shard .* is not a plain \.safetensors\/\.bin file name/, bad);
  }
  // One tensor stored in two shards.
  e = refusal('duplicate', (dir) => {
    const last = join(dir, 'model-00003-of-00003.safetensors');
    const f = new SafetensorsFile(last);
    const m = new Map(f.keys().map((k) => [k, f.get(k)] as const));
    f.close();
    const first = new SafetensorsFile(join(dir, 'model-00001-of-00003.safetensors'));
    const copied = first.keys()[0]!;
    m.set(copied, first.get(copied));
    first.close();
    writeSafetensors(last, m);
  });
  assert.match(e.message, /tensor ".+" is in two shards \(model-00001-of-00003\.safetensors and model-00003-of-00003\.safetensors\)/);
  // The index puts a tensor in a shard that does not hold it.
  e = refusal('moved', (_dir, wm) => { wm['logit_scale'] = wm[Object.keys(wm).find((k) => wm[k] !== wm['logit_scale'])!]!; });
  assert.match(e.message, /tensor "logit_scale" is in shard .*, but the index puts it in /);
});

test('the shard index itself is parsed within limits', () => {
  assert.throws(() => parseShardIndex('[1,2]', 'i.json'), /i\.json: expected a JSON object with "weight_map"/);
  assert.throws(() => parseShardIndex('{"weight_map": {}}', 'i.json'), /weight_map is empty/);
  assert.throws(() => parseShardIndex('{"weight_map": {"a": 3}}', 'i.json'), /weight_map\["a"\] is 3, not a shard file name/);
  assert.throws(() => parseShardIndex('{"weight_map"', 'i.json'), /not valid JSON/);
  const many = JSON.stringify({ weight_map: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`t${i}`, `s${i}.safetensors`])) });
  assert.equal(parseShardIndex(many, 'i.json').shards.length, 10);
  const saved = { ...IO_LIMITS };
  try {
    IO_LIMITS.shardIndexMaxShards = 4;
    assert.throws(() => parseShardIndex(many, 'i.json'), /more than 4 shard files/);
    IO_LIMITS.shardIndexMaxShards = saved.shardIndexMaxShards;
    IO_LIMITS.shardIndexMaxTensors = 5;
    assert.throws(() => parseShardIndex(many, 'i.json'), /more than 5 tensors/);
    const dir = join(tmp, 'big');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.safetensors.index.json'), many);
    IO_LIMITS.shardIndexMaxBytes = 100;
    assert.throws(() => new ShardedSource(join(dir, 'model.safetensors.index.json')), /bytes, more than the limit of 100 for a shard index/);
  } finally {
    Object.assign(IO_LIMITS, saved);
  }
});
