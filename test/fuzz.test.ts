// The hostile-input suite: generated checkpoints, configs, tokenizers, preprocessors, images and datasets, each
// run through the real `clip` command in a child process. Every one must end within 5 s and 500 MB of peak RSS,
// either refused (exit code != 0, nothing on stdout, an error naming the file) or, for a mutation that happens
// to be harmless, with finite outputs. The worst time and memory over the suite are printed as diagnostics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { fixture, SKIP_FIXTURES } from './fixtures.js';
import { runCli, type CliRun } from './hostile/run-cli.js';
import { fixtureJson, hfTinyDir, rawSafetensors, rng, splitSafetensors, withField } from './hostile/model-dir.js';

const LIMIT_MS = 5_000;
const LIMIT_MB = 500;
const IMAGE = fixture('common', 'images', 'chelsea.png');
const worst = { ms: 0, rssMb: 0, msCase: '', rssCase: '', cases: 0 };

interface Case {
  name: string;
  /** Files to create; returns the CLI arguments and the temp paths to remove. */
  make: () => Promise<{ args: string[]; cleanup: string[] }> | { args: string[]; cleanup: string[] };
  /** 'refused': must fail naming `names`; 'any': refused naming a file, or succeeds with finite outputs. */
  expect: 'refused' | 'any';
  names?: RegExp;
}

function within(r: CliRun, name: string): void {
  worst.cases++;
  if (r.ms > worst.ms) Object.assign(worst, { ms: r.ms, msCase: name });
  if (r.rssMb > worst.rssMb) Object.assign(worst, { rssMb: r.rssMb, rssCase: name });
  assert.ok(!r.timedOut, `${name}: still running after ${LIMIT_MS * 3} ms (killed)\n${r.stderr}`);
  assert.ok(r.ms < LIMIT_MS, `${name}: took ${r.ms.toFixed(0)} ms\n${r.stderr}`);
  assert.ok(r.rssMb < LIMIT_MB, `${name}: peak RSS ${r.rssMb.toFixed(0)} MB`);
  assert.ok(!/\n\s+at .*\(.*\.js:\d+:\d+\)/.test(r.stderr), `${name}: a stack trace instead of an error message\n${r.stderr}`);
}

function finiteOutput(r: CliRun, name: string): void {
  const out = JSON.parse(r.stdout);
  for (const e of [...(out.images ?? []), ...(out.texts ?? [])]) {
    if (e.error) continue;
    assert.ok(e.embedding.every((x: unknown) => typeof x === 'number' && Number.isFinite(x)), `${name}: non-finite embedding printed`);
  }
}

const cached = (dir: string) => readdirSync(dir, { recursive: true }).filter((p) => !String(p).endsWith('.lock')).length;

async function check(c: Case, cache: string): Promise<void> {
  const { args, cleanup } = await c.make();
  try {
    const before = cached(cache);
    // The ONNX cache is on (it is off by default under node --test) so a refused model can be seen to write nothing.
    const r = await runCli(args, { timeoutMs: LIMIT_MS * 3, env: { CLIP_CACHE: cache, CLIP_ONNX_CACHE: '1' } });
    within(r, c.name);
    if (c.expect === 'refused' || r.code !== 0) {
      if (r.code === 1) assert.equal(cached(cache), before, `${c.name}: a refused model left files in the ONNX cache`);
      assert.notEqual(r.code, 0, `${c.name}: accepted (exit 0)\n${r.stdout.slice(0, 300)}`);
      if (r.code === 1 && r.stdout.trim()) {
        // `embed --json` lists a failed image as {input, error}: allowed, but no embedding may be printed.
        const out = JSON.parse(r.stdout);
        assert.ok(![...(out.images ?? []), ...(out.texts ?? [])].some((e: any) => e.embedding), `${c.name}: printed embeddings while failing`);
      }
      assert.match(r.stderr, /^clip: /m, `${c.name}: no error message\n${r.stderr}`);
      if (c.names) assert.match(r.stderr, c.names, `${c.name}: the error does not name what is wrong\n${r.stderr}`);
    }
    if (r.code === 0 || r.code === 3) finiteOutput(r, c.name);
  } finally {
    for (const p of cleanup) rmSync(p, { recursive: true, force: true });
  }
}

const embedArgs = (model: string, extra: string[] = ['--image', IMAGE]) => ['embed', '--model', model, '--text', 'a photo of a cat', ...extra, '--json'];

function modelCase(name: string, replace: Parameters<typeof hfTinyDir>[0], names: RegExp, expect: Case['expect'] = 'refused'): Case {
  return { name, expect, names, make: () => { const d = hfTinyDir(replace); return { args: embedArgs(d), cleanup: [d] }; } };
}

const weights = () => new Uint8Array(readFileSync(fixture('hf-clip-tiny', 'model.safetensors')));
function mutateHeader(f: (h: Record<string, any>) => unknown, declared?: bigint): Uint8Array {
  const { header, data } = splitSafetensors(weights());
  return rawSafetensors(f(header) ?? header, data, declared);
}
const firstTensor = (h: Record<string, any>) => Object.keys(h).find((k) => k !== '__metadata__')!;
const cfg = () => fixtureJson('hf-clip-tiny', 'config.json');
const pre = () => fixtureJson('hf-clip-tiny', 'preprocessor_config.json');
const json = (o: unknown) => JSON.stringify(o);

const SAFETENSORS = /model\.safetensors/;
const CONFIG = /config\.json/;
const safetensorsCases: Case[] = [
  modelCase('safetensors: header length past the file', { 'model.safetensors': mutateHeader(() => undefined, 1n << 60n) }, SAFETENSORS),
  modelCase('safetensors: null header', { 'model.safetensors': rawSafetensors('null') }, SAFETENSORS),
  modelCase('safetensors: a null entry', { 'model.safetensors': mutateHeader((h) => { h[firstTensor(h)] = null; }) }, SAFETENSORS),
  modelCase('safetensors: negative data_offsets', { 'model.safetensors': mutateHeader((h) => { h[firstTensor(h)].data_offsets = [-64, 0]; }) }, SAFETENSORS),
  modelCase('safetensors: offsets reading the header', { 'model.safetensors': mutateHeader((h) => {
    const k = firstTensor(h);
    const [b, e] = h[k].data_offsets;
    h[k].data_offsets = [b - 16, e - 16];
  }) }, SAFETENSORS),
  modelCase('safetensors: overlapping tensors', { 'model.safetensors': mutateHeader((h) => {
    const ks = Object.keys(h).filter((k) => k !== '__metadata__' && h[k].shape.length === 1);
    const [a, b] = [h[ks[0]!], h[ks[1]!]];
    if (a.shape[0] === b.shape[0] && a.dtype === b.dtype) b.data_offsets = [...a.data_offsets];
    else b.data_offsets = [a.data_offsets[0], a.data_offsets[0] + (b.data_offsets[1] - b.data_offsets[0])];
  }) }, SAFETENSORS),
  modelCase('safetensors: negative shape', { 'model.safetensors': mutateHeader((h) => { h[firstTensor(h)].shape = [-1, -4]; }) }, SAFETENSORS),
  modelCase('safetensors: 2^53 elements', { 'model.safetensors': mutateHeader((h) => { h[firstTensor(h)].shape = [2 ** 26, 2 ** 27]; }) }, SAFETENSORS),
  modelCase('safetensors: unknown dtype', { 'model.safetensors': mutateHeader((h) => { h[firstTensor(h)].dtype = 'F128'; }) }, SAFETENSORS),
  modelCase('safetensors: truncated', { 'model.safetensors': weights().subarray(0, 300_000) }, SAFETENSORS),
  modelCase('safetensors: a tensor of the wrong shape', { 'model.safetensors': mutateHeader((h) => {
    const k = Object.keys(h).find((n) => n.endsWith('class_embedding'))!;
    const [b] = h[k].data_offsets;
    h[k].shape = [h[k].shape[0] / 2, 2];
    h[k].data_offsets = [b, b + h[k].shape[0] * 2 * 4];
  }) }, /class_embedding/),
  modelCase('safetensors: a missing tensor', { 'model.safetensors': mutateHeader((h) => { delete h[Object.keys(h).find((n) => n.includes('layer_norm') || n.includes('layernorm'))!]; }) }, /norm/),
];

const configCases: Case[] = [
  ['vision_config.num_hidden_layers', 0], ['vision_config.num_hidden_layers', -3], ['text_config.num_hidden_layers', 1.5],
  ['vision_config.hidden_size', '64'], ['text_config.hidden_size', 33], ['text_config.max_position_embeddings', 1e9],
  ['vision_config.image_size', 1e6], ['vision_config.patch_size', 0], ['text_config.num_attention_heads', 0],
  ['projection_dim', -16], ['text_config.layer_norm_eps', 'tiny'], ['text_config.vocab_size', 2 ** 40],
  ['vision_config.intermediate_size', 'wide'], ['text_config', []],
].map(([path, value]) => modelCase(`config.json: ${path} = ${json(value)}`, { 'config.json': json(withField(cfg(), path as string, value)) }, CONFIG));
configCases.push(modelCase('config.json: not JSON', { 'config.json': '{"vision_config": ' }, CONFIG));

const PREPROCESSOR = /preprocessor_config\.json/;
const preprocessorCases: Case[] = [
  ['size', { shortest_edge: 1e6 }], ['crop_size', { height: 1e6, width: 1e6 }], ['image_std', [0, 0, 0]],
  ['image_mean', ['a', 'b', 'c']], ['size', { shortest_edge: -5 }], ['image_std', [1, 1]],
].map(([path, value]) => modelCase(`preprocessor_config.json: ${path} = ${json(value)}`,
  { 'preprocessor_config.json': json(withField(pre(), path as string, value)) }, PREPROCESSOR));

const TOKENIZER = /tokenizer\.json/;
function tokenizerWith(f: (t: any) => void): string {
  const t = fixtureJson('hf-clip-tiny', 'tokenizer.json');
  f(t);
  return json(t);
}
const tokenizerCases: Case[] = [
  modelCase('tokenizer.json: an id of 1e9', { 'tokenizer.json': tokenizerWith((t) => { t.model.vocab['hostile</w>'] = 1e9; }) }, TOKENIZER),
  modelCase('tokenizer.json: a negative id', { 'tokenizer.json': tokenizerWith((t) => { t.model.vocab['hostile</w>'] = -7; }) }, TOKENIZER),
  modelCase('tokenizer.json: vocab is a string', { 'tokenizer.json': tokenizerWith((t) => { t.model.vocab = 'x'; }) }, TOKENIZER),
  modelCase('tokenizer.json: truncated', { 'tokenizer.json': readFileSync(fixture('hf-clip-tiny', 'tokenizer.json')).subarray(0, 5000) }, TOKENIZER),
];

async function imageCase(name: string, bytes: () => Promise<Uint8Array> | Uint8Array, file: string, names: RegExp): Promise<Case> {
  return {
    name, expect: 'refused', names,
    make: async () => {
      const d = mkdtempSync(join(tmpdir(), 'clip-hostile-img-'));
      const p = join(d, file);
      writeFileSync(p, await bytes());
      return { args: ['embed', '--model', fixture('hf-clip-tiny'), '--image', p, '--json'], cleanup: [d] };
    },
  };
}

async function imageCases(): Promise<Case[]> {
  const jpeg = await sharp(IMAGE).jpeg().toBuffer();
  return Promise.all([
    imageCase('image: 16000x16000 PNG (a few hundred KB)', () => sharp({ create: { width: 16000, height: 16000, channels: 3, background: '#fff' } }).png({ compressionLevel: 9 }).toBuffer(), 'huge.png', /huge\.png/),
    imageCase('image: truncated JPEG', () => jpeg.subarray(0, jpeg.length >> 1), 'cut.jpg', /cut\.jpg/),
    imageCase('image: random bytes named .png', () => Uint8Array.from({ length: 4096 }, rngBytes(3)), 'noise.png', /noise\.png/),
    imageCase('image: empty file', () => new Uint8Array(0), 'empty.jpg', /empty\.jpg/),
    imageCase('image: PNG header claiming 1e5 x 1e5', () => pngHeaderOnly(100_000, 100_000), 'liar.png', /liar\.png/),
  ]);
}

function rngBytes(seed: number): () => number {
  const r = rng(seed);
  return () => Math.floor(r() * 256);
}

/** A PNG signature and IHDR chunk announcing the given size, then no image data. */
function pngHeaderOnly(w: number, h: number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const chunk = Buffer.concat([Buffer.from('IHDR'), ihdr]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(13);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(chunk));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), len, chunk, crc]);
}

function crc32(buf: Uint8Array): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function datasetCases(): Case[] {
  const data = (name: string, file: string, content: string, args: (path: string, dir: string) => string[]): Case => ({
    name, expect: 'refused', names: new RegExp(file.replace('.', '\\.')),
    make: () => {
      const d = mkdtempSync(join(tmpdir(), 'clip-hostile-data-'));
      writeFileSync(join(d, file), content);
      return { args: args(join(d, file), d), cleanup: [d] };
    },
  });
  const model = ['--model', fixture('hf-clip-tiny')];
  return [
    data('dataset: retrieval TSV with no tabs', 'pairs.tsv', 'just some words\nand more words\n', (p) => ['eval', 'retrieval', ...model, '--tsv', p]),
    data('dataset: retrieval CSV with no separator', 'pairs.csv', 'just some words\nand more words\n', (p) => ['eval', 'retrieval', ...model, '--csv', p]),
    data('dataset: EasyNLP TSV with a 300 KB non-base64 image', 'data.tsv', `caption\t${'!'.repeat(300_000)}\n`, (p, d) => ['embed', ...model, '--input', p, '--out', join(d, 'out.tsv')]),
    data('dataset: training TSV with no image column', 'train.tsv', 'a cat\na dog\n', (p, d) => ['train', p, ...model, '-o', join(d, 'out'), '--epochs', '1']),
  ];
}

/** Seeded mutations: a random field of the config or of a tensor's header entry set to a hostile value. */
function mutationCases(count: number, seed: number): Case[] {
  const r = rng(seed);
  const hostile = [0, -1, 1e9, 2 ** 53, 0.5, '7', null, [], {}, true, -1e-300];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const leaves = (o: any, prefix = ''): string[] => Object.entries(o).flatMap(([k, v]) =>
    v && typeof v === 'object' && !Array.isArray(v) ? leaves(v, `${prefix}${k}.`) : typeof v === 'number' ? [`${prefix}${k}`] : []);
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 2 === 0) {
      const path = pick(leaves(cfg()));
      const value = pick(hostile);
      out.push(modelCase(`mutation ${seed}/${i}: config.json ${path} = ${json(value)}`, { 'config.json': json(withField(cfg(), path, value)) }, CONFIG, 'any'));
    } else {
      const field = pick(['shape', 'data_offsets', 'dtype'] as const);
      const value = pick(hostile);
      let target = '';
      const bytes = mutateHeader((h) => {
        target = pick(Object.keys(h).filter((k) => k !== '__metadata__'));
        h[target][field] = field === 'dtype' ? value : Array.isArray(value) ? value : [value, value];
      });
      out.push(modelCase(`mutation ${seed}/${i}: model.safetensors ${target}.${field} = ${json(value)}`, { 'model.safetensors': bytes }, SAFETENSORS, 'any'));
    }
  }
  return out;
}

const cache = mkdtempSync(join(tmpdir(), 'clip-hostile-cache-'));
const groups: Array<[string, () => Promise<Case[]> | Case[]]> = [
  ['safetensors', () => safetensorsCases],
  ['config.json', () => configCases],
  ['preprocessor_config.json', () => preprocessorCases],
  ['tokenizer.json', () => tokenizerCases],
  ['images', imageCases],
  ['datasets', datasetCases],
  ['seeded mutations', () => mutationCases(16, 20261204)],
];

for (const [group, cases] of groups) {
  test(`hostile ${group}: each ends within ${LIMIT_MS} ms and ${LIMIT_MB} MB with a clear error`, { skip: SKIP_FIXTURES }, async (t) => {
    for (const c of await cases()) await t.test(c.name, () => check(c, cache));
  });
}

test('worst time and memory over the hostile suite', { skip: SKIP_FIXTURES }, (t) => {
  t.diagnostic(`worst time ${worst.ms.toFixed(0)} ms (${worst.msCase}); worst peak RSS ${worst.rssMb.toFixed(0)} MB (${worst.rssCase}); ${worst.cases} cases`);
  rmSync(cache, { recursive: true, force: true });
  assert.ok(worst.cases > 0);
});
