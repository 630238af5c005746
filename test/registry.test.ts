// The family registry: every family is one descriptor (src/models/families/<name>.ts), detection picks the
// right one for each reference checkpoint, and no code outside models/families/ switches on a family's name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { locate, openCheckpoint } from '../src/models/checkpoint.js';
import { detectFamily, FAMILIES, familyNamed } from '../src/models/families/index.js';
import { CLIP_TEXT_INPUTS, hfPreprocess, scoresFromLogits, textInputs, type FamilyDescriptor, type OpenOptions } from '../src/models/family.js';
import { pipelineFor } from '../src/runtime/preprocess.js';
import { familyContextLength } from '../src/models/tokenizer.js';
import { META_FILES, pickFiles } from '../src/hub/files.js';
import { buildBatch } from '../src/text/types.js';
import { fixture, REPO_ROOT, SKIP_FIXTURES } from './fixtures.js';

const SRC = join(REPO_ROOT, 'src');
const SIGLIP_TINY = join(REPO_ROOT, 'test', 'goldens', 'siglip-tiny');
const XLMR_TINY = join(REPO_ROOT, 'test', 'goldens', 'open-clip-xlmr-tiny');
const FAMILY_DIR = join(SRC, 'models', 'families');

function* sources(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* sources(p);
    else if (/\.(ts|js|mjs)$/.test(name)) yield p;
  }
}

/** A family's name or config model_type written as a string anywhere: what a switch on the family looks like. */
const FAMILY_LITERAL = /(['"`])(chinese-clip|taiyi|hf-clip|open-clip|chinese_clip|siglip|siglip2)\1/g;

test('outside src/models/families/ no code names a family (no switch or if on a family name)', () => {
  const found: string[] = [];
  let scanned = 0;
  for (const file of sources(SRC)) {
    if (file.startsWith(FAMILY_DIR + '/')) continue;
    scanned++;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      for (const m of line.matchAll(FAMILY_LITERAL)) found.push(`${relative(REPO_ROOT, file)}:${i + 1}: ${m[0]}`);
    });
  }
  assert.ok(scanned > 100, `only ${scanned} files scanned: the scanner is broken`);
  assert.deepEqual(found, []);
});

test('the scanner sees single, double and backtick quotes and model_type names', () => {
  const line = `if (a === 'taiyi' || b === "hf-clip" || c === \`open-clip\` || t === 'chinese_clip' || u === 'siglip') x('chinese-clipper', 'taiyi2', 'SiglipTokenizer');`;
  assert.deepEqual([...line.matchAll(FAMILY_LITERAL)].map((m) => m[2]), ['taiyi', 'hf-clip', 'open-clip', 'chinese_clip', 'siglip']);
});

test('the registry lists every family once, each with one descriptor file', () => {
  const names = FAMILIES.map((f) => f.name);
  assert.deepEqual([...names].sort(), ['chinese-clip', 'hf-clip', 'onnx', 'open-clip', 'siglip', 'taiyi']);
  assert.equal(new Set(names).size, names.length);
  for (const f of FAMILIES) {
    assert.equal(familyNamed(f.name), f);
    assert.ok(f.summary.length > 10, `${f.name}: summary`);
    assert.ok(['hf', 'openai'].includes(f.tokenizer.mode), `${f.name}: tokenizer mode`);
    assert.ok(['softmax', 'sigmoid'].includes(f.score.kind), `${f.name}: score`);
  }
  assert.throws(() => familyNamed('siglip-not-yet'), /unknown model family "siglip-not-yet" \(known: taiyi, open-clip, onnx, hf-clip, chinese-clip, siglip\)/);
  // One file per family (index.ts is the registry itself).
  const files = readdirSync(FAMILY_DIR).filter((n) => n.endsWith('.ts') && n !== 'index.ts');
  assert.equal(files.length, FAMILIES.length, `files: ${files.join(', ')}`);
});

test("Chinese-CLIP's 52-token context comes from its descriptor alone", { skip: SKIP_FIXTURES }, () => {
  assert.equal(familyNamed('chinese-clip').tokenizer.contextLength, 52);
  assert.equal(familyContextLength(fixture('zh-clip-tiny')), 52);
  assert.equal(familyContextLength(fixture('hf-clip-tiny')), undefined, 'CLIP reads its length from its files');
  assert.equal(familyContextLength(fixture('common', 'tokenizer-zh')), undefined, 'a bare vocabulary is no checkpoint');
  assert.equal(openCheckpoint(fixture('zh-clip-tiny')).contextLength, 52);
});

test('detection picks the right family for every reference checkpoint', { skip: SKIP_FIXTURES }, () => {
  const d = mkdtempSync(join(tmpdir(), 'clip-registry-'));
  try {
    const pair = join(d, 'pair.json');
    writeFileSync(pair, JSON.stringify({ text: fixture('taiyi-text-tiny'), image: fixture('hf-clip-tiny') }));
    const pairDir = join(d, 'pair-dir');
    const pairJson = JSON.stringify({ text: fixture('taiyi-text-tiny'), image: fixture('hf-clip-tiny') });
    mkdirSync(pairDir);
    writeFileSync(join(pairDir, 'clip-pair.json'), pairJson);
    const cases: [string, string | undefined, OpenOptions?][] = [
      [fixture('hf-clip-tiny'), 'hf-clip'],
      [fixture('hf-clip-tiny', 'model.safetensors'), 'hf-clip'],
      [fixture('hf-clip-tiny'), 'onnx', { format: 'onnx' }],
      [fixture('hf-clip-tiny', 'onnx'), 'onnx'],
      [fixture('hf-clip-tiny', 'onnx', 'text_model.onnx'), 'onnx'],
      [fixture('openai-vit-tiny'), 'open-clip'],
      [fixture('openai-rn-tiny'), 'open-clip'],
      [fixture('openai-vit-tiny', 'open_clip_model.safetensors'), 'open-clip'],
      [fixture('pickles', 'openai-vit-tiny-torchscript.pt'), 'open-clip'],
      [fixture('pickles', 'openai-vit-tiny-fp16.bin'), 'open-clip'],
      [fixture('zh-clip-tiny'), 'chinese-clip'],
      // open_clip with an HF text tower: the text model's config.json beside open_clip_config.json does not make it an HF family.
      [XLMR_TINY, 'open-clip'],
      [join(XLMR_TINY, 'open_clip_model.safetensors'), 'open-clip'],
      [SIGLIP_TINY, 'siglip'],
      [join(SIGLIP_TINY, 'model.safetensors'), 'siglip'],
      [pair, 'taiyi'],
      [pairDir, 'taiyi'],
      [fixture('taiyi-text-tiny'), undefined], // a BERT classifier alone is half of a Taiyi pair
      [fixture('common', 'tokenizer-zh'), undefined],
    ];
    for (const [path, want, opts] of cases) {
      assert.equal(detectFamily(locate(path, opts))?.name, want, `${relative(d, path)} ${JSON.stringify(opts ?? {})}`);
      if (want) assert.equal(openCheckpoint(path, opts).family, want, `${path} opens as ${want}`);
    }
    // A state dict of another layout with no config.json beside it is claimed by the bare-OpenAI detector and refused by name.
    assert.throws(() => openCheckpoint(fixture('pickles', 'hf-clip-tiny-pytorch_model.bin')), /not an OpenAI CLIP state dict/);
    assert.throws(() => openCheckpoint(fixture('taiyi-text-tiny')), /model_type "bert" is not a supported CLIP family/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('the hub asks the registry: every family list, open_clip first, ONNX towers for HF repos only', () => {
  for (const f of FAMILIES) for (const m of f.hub?.meta ?? []) assert.ok(META_FILES.includes(m), `${f.name}: ${m}`);
  const picked = (...a: Parameters<typeof pickFiles>) => pickFiles(...a).sort();
  assert.deepEqual(picked('o/oc', ['open_clip_config.json', 'config.json', 'open_clip_model.safetensors', 'model.safetensors']),
    ['config.json', 'open_clip_config.json', 'open_clip_model.safetensors']);
  assert.deepEqual(picked('o/hf', ['config.json', 'tokenizer.json', 'pytorch_model.bin', 'model.safetensors']),
    ['config.json', 'model.safetensors', 'tokenizer.json']);
  assert.deepEqual(picked('o/x', ['config.json', 'onnx/vision_model.onnx', 'onnx/text_model.onnx']),
    ['config.json', 'onnx/text_model.onnx', 'onnx/vision_model.onnx']);
  assert.throws(() => pickFiles('o/oc', ['open_clip_config.json', 'onnx/vision_model.onnx', 'onnx/text_model.onnx'], 'onnx'), /no ONNX towers/);
  assert.throws(() => pickFiles('o/none', ['README.md']), /has none of open_clip_config\.json, config\.json/);
});

test('text inputs: what each family feeds its text tower, and the pooling SigLIP needs', () => {
  const b = buildBatch([[5, 6, 7], [5, 7]], { padId: 0, contextLength: 8, pad: 'longest', endId: 7 });
  const clip = CLIP_TEXT_INPUTS.feeds(b);
  assert.deepEqual(Object.keys(clip), ['input_ids', 'pool_index']);
  assert.deepEqual([...clip.pool_index!.data], [2n, 3n + 1n], 'flat index of each row\'s EOT');
  const last = textInputs('last', { poolIndex: 'last', padding: 'max', rowsIndependent: false }).feeds(b);
  assert.deepEqual([...last.pool_index!.data], [2n, 5n], 'flat index of each row\'s last position');
  assert.deepEqual(Object.keys(textInputs('m', { attentionMask: true, rowsIndependent: true }).feeds(b)), ['input_ids', 'attention_mask']);
});

test('score rules: softmax over the classes, or a per-pair sigmoid with the bias', () => {
  const soft = scoresFromLogits({ kind: 'softmax' }, [1, 2, 3]);
  assert.ok(Math.abs(soft.reduce((a, x) => a + x, 0) - 1) < 1e-12);
  assert.ok(soft[2]! > soft[1]! && soft[1]! > soft[0]!);
  const sig = scoresFromLogits({ kind: 'sigmoid' }, [10, 0], -10);
  assert.ok(Math.abs(sig[0]! - 0.5) < 1e-12 && sig[1]! < 1e-4, `sigmoid(z + bias): ${sig}`);
});

test('a descriptor can say what SigLIP needs: sigmoid scores, last-token pooling, max padding, no crop, its own loss', () => {
  const inputs = textInputs('siglip', { poolIndex: 'last', padding: 'max', rowsIndependent: false });
  const noCrop = { size: { height: 224, width: 224 }, do_center_crop: false, image_mean: [0.5, 0.5, 0.5], image_std: [0.5, 0.5, 0.5] };
  const siglipLike: FamilyDescriptor = {
    name: 'siglip-like', summary: 'a test descriptor shaped like SigLIP',
    detect: () => false,
    parseConfig: () => ({}),
    open: () => { throw new Error('not loaded in this test'); },
    towers: { image: ['vit'], text: ['clip-text'], pooling: { image: ['attention-pool'], text: ['last'] } },
    tokenizer: { mode: 'hf', contextLength: 64 },
    score: { kind: 'sigmoid' },
    train: { loss: 'sigmoid', saveAs: 'clip-config' },
  };
  assert.equal(siglipLike.score.kind, 'sigmoid');
  assert.equal(inputs.padding, 'max');
  const d = mkdtempSync(join(tmpdir(), 'clip-siglip-like-'));
  try {
    // No preprocessor_config.json: the family's processor defaults apply (resize to 224x224, no crop).
    const spec = hfPreprocess(d, 224, noCrop);
    const p = pipelineFor(spec);
    assert.deepEqual([p.doCenterCrop, p.size, [...p.mean]], [false, { height: 224, width: 224 }, [0.5, 0.5, 0.5]]);
    // A file's own keys win over the family's defaults.
    writeFileSync(join(d, 'preprocessor_config.json'), JSON.stringify({ image_mean: [0.1, 0.2, 0.3] }));
    assert.deepEqual([...pipelineFor(hfPreprocess(d, 224, noCrop)).mean], [0.1, 0.2, 0.3]);
    assert.equal(pipelineFor(hfPreprocess(d, 224, noCrop)).doCenterCrop, false);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
