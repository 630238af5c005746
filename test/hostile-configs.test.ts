// Hostile checkpoint configs and weights: every bad value is refused at load with the file and the field
// (or tensor) named, before a graph is built; a model that still gives NaN/Infinity says so per input.
// Each case is a fixture copied into a temp dir (weights symlinked unless the case rewrites them) and mutated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SafetensorsFile, writeSafetensors } from '../src/io/safetensors.js';
import type { RawTensor } from '../src/io/tensor.js';
import { pipelineFromPreprocessorConfig } from '../src/image/pipelines.js';
import { ClipModel } from '../src/runtime/clip-model.js';
import { fromConfig } from '../src/train/source.js';
import { CLIP_BIN, fixture, SKIP_FIXTURES } from './fixtures.js';
import { readJson } from './helpers.js';

const CLIP_TOKENIZER = fixture('common', 'tokenizer-clip');
const root = mkdtempSync(join(tmpdir(), 'clip-hostile-'));
test.after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

type Json = Record<string, any>;
interface Mutation {
  /** Edit a JSON file of the fixture (config.json, preprocessor_config.json, open_clip_config.json). */
  json?: Record<string, (j: Json) => void>;
  /** Rewrite a safetensors file of the fixture: edit its tensor map. */
  tensors?: Record<string, (m: Map<string, RawTensor>) => void>;
}

/** A copy of fixture `name` with the mutation applied: small files copied, untouched weights symlinked. */
function variant(name: string, m: Mutation = {}): string {
  const dir = join(root, `${name}-${n++}`);
  mkdirSync(dir);
  for (const f of readdirSync(fixture(name))) {
    const src = fixture(name, f);
    if (statSync(src).isDirectory()) continue;
    if (m.json?.[f]) {
      const j = readJson(src);
      m.json[f]!(j);
      writeFileSync(join(dir, f), JSON.stringify(j));
    } else if (m.tensors?.[f]) {
      const st = new SafetensorsFile(src);
      const map = new Map(st.keys().map((k) => [k, st.get(k)]));
      st.close();
      m.tensors[f]!(map);
      writeSafetensors(join(dir, f), map);
    } else if (f.endsWith('.json')) {
      copyFileSync(src, join(dir, f));
    } else {
      symlinkSync(src, join(dir, f));
    }
  }
  return dir;
}

const f32 = (shape: number[], fill: number): RawTensor => {
  const a = new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(fill);
  return { dtype: 'float32', shape, bytes: new Uint8Array(a.buffer) };
};

const load = (dir: string, tokenizer?: string) => ClipModel.load(dir, { cache: false, tokenizerDir: tokenizer });

async function refused(dir: string, pattern: RegExp, tokenizer?: string): Promise<void> {
  await assert.rejects(load(dir, tokenizer), (e: Error) => {
    assert.match(e.message, pattern);
    return true;
  });
}

const hfConfig = (edit: (j: Json) => void): string => variant('hf-clip-tiny', { json: { 'config.json': edit } });

test('HF CLIP config values are range-checked, naming the file and field', { skip: SKIP_FIXTURES }, async () => {
  const cases: [(j: Json) => void, RegExp][] = [
    [(j) => (j.vision_config.num_hidden_layers = 0), /config\.json: vision_config\.num_hidden_layers must be an integer >= 1, got 0/],
    [(j) => (j.text_config.num_hidden_layers = -3), /config\.json: text_config\.num_hidden_layers must be an integer >= 1, got -3/],
    [(j) => (j.vision_config.hidden_size = '64'), /config\.json: vision_config\.hidden_size must be an integer >= 1, got "64"/],
    [(j) => (j.vision_config.num_hidden_layers = 1.5), /vision_config\.num_hidden_layers must be an integer >= 1, got 1\.5/],
    [(j) => (j.text_config.max_position_embeddings = 1e9), /text_config\.max_position_embeddings must be an integer <= 8192, got 1000000000/],
    [(j) => (j.text_config.vocab_size = 1e12), /text_config\.vocab_size must be an integer <= \d+, got 1000000000000/],
    [(j) => (j.vision_config.num_attention_heads = 5), /vision_config\.hidden_size 64 is not divisible by vision_config\.num_attention_heads 5/],
    [(j) => (j.vision_config.image_size = 1e6), /vision_config\.image_size must be an integer <= 4096/],
    [(j) => (j.vision_config.patch_size = 0), /vision_config\.patch_size must be an integer >= 1, got 0/],
    [(j) => (j.vision_config.patch_size = 448), /vision_config\.patch_size must be an integer <= 224/],
    [(j) => (j.text_config.layer_norm_eps = 0), /text_config\.layer_norm_eps must be > 0, got 0/],
    [(j) => (j.text_config.layer_norm_eps = 'tiny'), /text_config\.layer_norm_eps must be a finite number, got "tiny"/],
    [(j) => (j.logit_scale_init_value = 1e308), /logit_scale_init_value must be <= 100/],
    [(j) => (j.projection_dim = -16), /config\.json: projection_dim must be an integer >= 1, got -16/],
    [(j) => (j.text_config.hidden_act = 'swish'), /text_config\.hidden_act "swish" is not a supported activation/],
    [(j) => (j.text_config.eos_token_id = 60000), /text_config\.eos_token_id must be an integer <= 49407, got 60000/],
    [(j) => (j.vision_config = 7), /config\.json: .*vision_config/],
  ];
  for (const [edit, pattern] of cases) await refused(hfConfig(edit), pattern);
});

test('preprocessor_config.json: mean/std finite, std non-zero, sizes bounded', { skip: SKIP_FIXTURES }, async () => {
  const pp = (edit: (j: Json) => void) => variant('hf-clip-tiny', { json: { 'preprocessor_config.json': edit } });
  await refused(pp((j) => (j.image_std = [0, 0, 0])), /preprocessor_config\.json: image_std\[0\] must be greater than 0/);
  await refused(pp((j) => (j.image_std = 0)), /preprocessor_config\.json: image_std\[0\] must be greater than 0/);
  await refused(pp((j) => (j.image_mean = [0.5, 'x', 0.5])), /preprocessor_config\.json: image_mean\[1\] must be a finite number, got "x"/);
  await refused(pp((j) => (j.image_mean = [0.5, 0.5])), /preprocessor_config\.json: image_mean must be 3 numbers/);
  await refused(pp((j) => (j.crop_size = { height: 100000, width: 224 })), /preprocessor_config\.json: crop_size\.height must be an integer from 1 to 4096/);
  await refused(pp((j) => (j.size = { shortest_edge: 1e6 })), /preprocessor_config\.json: size\.shortest_edge must be an integer from 1 to 4096/);
  await refused(pp((j) => (j.size = -1)), /preprocessor_config\.json: size must be an integer from 1 to 4096, got -1/);
});

test('HF CLIP weights must have the shapes the config implies: tensor named, expected and actual shape', { skip: SKIP_FIXTURES }, async () => {
  // A [2^53, 0] class embedding holds no bytes; before, it gave null embeddings.
  const huge = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('vision_model.embeddings.class_embedding', { dtype: 'float32', shape: [2 ** 53, 0], bytes: new Uint8Array(0) }) } });
  // Refused where the file is read (io/safetensors.ts): 2^53 is not a safe element count.
  await refused(huge, /model\.safetensors: tensor "vision_model\.embeddings\.class_embedding": shape \[9007199254740992,0\] is not a list of non-negative integers/);
  const proj = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('text_projection.weight', f32([16, 31], 0.01)) } });
  await refused(proj, /"text_projection\.weight" has shape \[16, 31\], expected \[16, 32\]/);
  const qkv = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('vision_model.encoder.layers.1.self_attn.k_proj.weight', f32([64, 63], 0.01)) } });
  await refused(qkv, /"vision_model\.encoder\.layers\.1\.self_attn\.k_proj\.weight" \[64, 63\].*should differ only in their first dimension/);
  const gone = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.delete('vision_model.post_layernorm.weight') } });
  await refused(gone, /missing tensor "vision_model\.post_layernorm\.weight"/);
  const bias = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('visual_projection.bias', f32([16], 0.5)) } });
  await refused(bias, /"visual_projection\.bias" is a bias of the image projection, which has no bias in CLIP/);
  const noQ = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.delete('vision_model.encoder.layers.0.self_attn.q_proj.bias') } });
  await refused(noQ, /missing tensor "vision_model\.encoder\.layers\.0\.self_attn\.q_proj\.bias" \(visual\.blocks\.0\.attn\.qkv\.bias\)/);
  // A config that counts fewer layers than the weights hold would silently drop the rest.
  await refused(hfConfig((j) => (j.vision_config.num_hidden_layers = 1)), /"vision_model\.encoder\.layers\.1\.layer_norm1\.weight" is one block more than the config has 1 vision layers/);
  await refused(hfConfig((j) => (j.text_config.num_hidden_layers = 3)), /missing tensor "text_model\.encoder\.layers\.2\.layer_norm1\.weight"/);
  await refused(hfConfig((j) => (j.vision_config.hidden_size = 32)), /"vision_model\.embeddings\.class_embedding" has shape \[64\], expected \[32\]/);
  await refused(hfConfig((j) => (j.vision_config.image_size = 256)), /"vision_model\.embeddings\.position_embedding\.weight" has shape \[50, 64\], expected \[65, 64\]/);
  await refused(hfConfig((j) => (j.text_config.max_position_embeddings = 100)), /"text_model\.embeddings\.position_embedding\.weight" has shape \[77, 32\], expected \[100, 32\]/);
  // A refused weight file is closed: a server retrying a bad model must not run out of descriptors.
  if (process.platform === 'linux') {
    const fds = () => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 5; i++) await assert.rejects(load(huge));
    assert.equal(fds(), before);
  }
  const scale = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('logit_scale', f32([2], 1)) } });
  await refused(scale, /"logit_scale" has shape \[2\], expected \[\]/);
});

test('non-finite weights are refused with the tensor name; non-finite embeddings are errors, never output', { skip: SKIP_FIXTURES }, async () => {
  const img = fixture('common', 'images', readJson(fixture('hf-clip-tiny', 'golden.json')).photos[0]);
  const nan = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('text_model.final_layer_norm.weight', f32([32], NaN)) } });
  const m1 = await load(nan);
  await assert.rejects(m1.encodeTexts(['a photo']), /"text_model\.final_layer_norm\.weight" holds a non-finite value \(NaN at index 0\)/);
  await m1.release();
  const inf = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('logit_scale', f32([], Infinity)) } });
  await refused(inf, /"logit_scale" holds a non-finite value \(Infinity/);
  const hot = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('logit_scale', f32([], 1000)) } });
  await refused(hot, /"logit_scale" must be a number from -100 to 100 \(log space\), got 1000/);

  // Finite weights whose products overflow float32: every feature is ±Infinity, every embedding NaN.
  const big = variant('hf-clip-tiny', {
    tensors: { 'model.safetensors': (m) => { m.set('visual_projection.weight', f32([16, 64], 3e38)); m.set('text_projection.weight', f32([16, 32], 3e38)); } },
  });
  const m2 = await load(big);
  const res = await m2.encodeImages([img, img]);
  for (const r of res) {
    assert.equal(r.embedding, undefined);
    assert.match(r.error!, /non-finite embedding/);
    assert.ok(r.error!.includes(img), 'the error names the input');
  }
  await assert.rejects(m2.encodeTexts(['a cat', 'a dog']), /text "a (cat|dog)": the model gave a non-finite embedding/);
  await assert.rejects(m2.encodeTexts(['a cat'], { normalize: false }), /non-finite embedding/);
  await m2.release();
});

test('clip embed: a bad config exits non-zero, prints nothing to stdout, names the field', { skip: SKIP_FIXTURES }, () => {
  const dir = hfConfig((j) => (j.vision_config.num_hidden_layers = 0));
  const r = spawnSync(process.execPath, [CLIP_BIN, 'embed', '--model', dir, '--text', 'a cat', '--json', '--no-cache'], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /config\.json: vision_config\.num_hidden_layers must be an integer >= 1, got 0/);
  // Non-finite embeddings: the image is reported as failed (exit 1), never printed as nulls.
  const big = variant('hf-clip-tiny', { tensors: { 'model.safetensors': (m) => m.set('visual_projection.weight', f32([16, 64], 3e38)) } });
  const img = fixture('common', 'images', readJson(fixture('hf-clip-tiny', 'golden.json')).photos[0]);
  const r2 = spawnSync(process.execPath, [CLIP_BIN, 'embed', '--model', big, '--image', img, '--json', '--no-cache'], { encoding: 'utf8' });
  assert.equal(r2.status, 1, r2.stderr);
  assert.doesNotMatch(r2.stdout, /null/);
  assert.match(r2.stderr, /non-finite embedding/);
});

test('Chinese-CLIP: BERT text config checked, and its weights against it', { skip: SKIP_FIXTURES }, async () => {
  const zh = (edit: (j: Json) => void) => variant('zh-clip-tiny', { json: { 'config.json': edit } });
  await refused(zh((j) => (j.text_config.num_attention_heads = 0)), /config\.json: text_config\.num_attention_heads must be an integer >= 1, got 0/);
  await refused(zh((j) => (j.text_config.num_attention_heads = 3)), /text_config\.hidden_size 32 is not divisible by text_config\.num_attention_heads 3/);
  await refused(zh((j) => (j.text_config.max_position_embeddings = 40)), /text_config\.max_position_embeddings must be at least 52/);
  await refused(zh((j) => (j.text_config.type_vocab_size = 3)), /"text_model\.embeddings\.token_type_embeddings\.weight" has shape \[2, 32\], expected \[3, 32\]/);
  await refused(zh((j) => (j.text_config.num_hidden_layers = 1)), /"text_model\.encoder\.layer\.1\.attention\.output\.LayerNorm\.weight" is one block more/);
  await refused(zh((j) => (j.vision_config.num_hidden_layers = -1)), /vision_config\.num_hidden_layers must be an integer >= 1, got -1/);
  await refused(zh((j) => (j.text_config.layer_norm_eps = -1e-12)), /text_config\.layer_norm_eps must be > 0/);
});

test('open_clip ViT and ModifiedResNet configs and weights', { skip: SKIP_FIXTURES }, async () => {
  const oc = (name: string, edit: (j: Json) => void) => variant(name, { json: { 'open_clip_config.json': edit } });
  const vit = (edit: (j: Json) => void) => oc('openai-vit-tiny', edit);
  await refused(vit((j) => (j.model_cfg.vision_cfg.layers = 0)), /open_clip_config\.json: model_cfg\.vision_cfg\.layers must be an integer >= 1, got 0/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.vision_cfg.head_width = 60)), /model_cfg\.vision_cfg\.width 64 is not divisible by model_cfg\.vision_cfg\.head_width 60/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.text_cfg.context_length = 1e9)), /model_cfg\.text_cfg\.context_length must be an integer <= 8192/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.vision_cfg.mlp_ratio = -4)), /model_cfg\.vision_cfg\.mlp_ratio must be > 0, got -4/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.embed_dim = '16')), /model_cfg\.embed_dim must be an integer >= 1, got "16"/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.preprocess_cfg.std = [0.2, 0, 0.2])), /open_clip_config\.json: preprocess_cfg: std\[1\] must be greater than 0/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.text_cfg.width = 32)), /"token_embedding\.weight" has shape \[49408, 16\], expected \[49408, 32\]/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.vision_cfg.layers = 1)), /"visual\.transformer\.resblocks\.1\.ln_1\.weight" is one block more/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.vision_cfg.ls_init_value = 1e-5)), /model_cfg\.vision_cfg\.ls_init_value 0\.00001 is not supported/, CLIP_TOKENIZER);
  await refused(vit((j) => (j.model_cfg.text_cfg.pool_type = 'first')), /model_cfg\.text_cfg\.pool_type "first" is not supported/, CLIP_TOKENIZER);
  // OpenAI's projections are stored [in, out]: the message names the stored key; shapes are the canonical [out, in].
  await refused(vit((j) => (j.model_cfg.embed_dim = 8)), /"visual\.proj" has shape \[16, 64\], expected \[8, 64\]/, CLIP_TOKENIZER);

  const rn = (edit: (j: Json) => void) => oc('openai-rn-tiny', edit);
  await refused(rn((j) => (j.model_cfg.vision_cfg.layers = [1, 1, 1])), /model_cfg\.vision_cfg\.layers must list the blocks of 4 ResNet stages/, CLIP_TOKENIZER);
  await refused(rn((j) => (j.model_cfg.vision_cfg.layers = [1, 0, 1, 1])), /model_cfg\.vision_cfg\.layers\[1\] must be an integer >= 1, got 0/, CLIP_TOKENIZER);
  await refused(rn((j) => (j.model_cfg.vision_cfg.image_size = 100)), /model_cfg\.vision_cfg\.image_size of a ModifiedResNet must be a multiple of 32, got 100/, CLIP_TOKENIZER);
  await refused(rn((j) => (j.model_cfg.vision_cfg.layers = [1, 2, 1, 1])), /missing tensor "visual\.layer2\.1\.conv1\.weight"/, CLIP_TOKENIZER);
  await refused(rn((j) => (j.model_cfg.vision_cfg.image_size = 256)), /"visual\.attnpool\.positional_embedding" has shape \[50, 512\], expected \[65, 512\]/, CLIP_TOKENIZER);
});

test('Taiyi: the BERT classifier config and the pairing file are checked', { skip: SKIP_FIXTURES }, async () => {
  const pair = (edit: (j: Json) => void, spec: Json = {}) => {
    const text = variant('taiyi-text-tiny', { json: { 'config.json': edit } });
    const file = join(text, 'clip-pair.json');
    writeFileSync(file, JSON.stringify({ text: '.', image: fixture('hf-clip-tiny'), ...spec }));
    return file;
  };
  await refused(pair((j) => (j.hidden_size = '32')), /taiyi-text-tiny-\d+\/config\.json: hidden_size must be an integer >= 1, got "32"/);
  await refused(pair((j) => (j.num_hidden_layers = 0)), /config\.json: num_hidden_layers must be an integer >= 1, got 0/);
  await refused(pair((j) => (j.vocab_size = 100)), /"bert\.embeddings\.word_embeddings\.weight" has shape \[21128, 32\], expected \[100, 32\]/);
  await refused(pair(() => {}, { context_length: 1e9 }), /clip-pair\.json: context_length must be an integer <= 512, got 1000000000/);
  // The pairing itself still loads and runs.
  const ok = await load(pair(() => {}));
  assert.equal((await ok.encodeTexts(['一只猫']))[0]!.length, 16);
  await ok.release();
});

test('an ONNX file ONNX Runtime cannot load is named in the error', { skip: SKIP_FIXTURES }, async () => {
  const dir = variant('hf-clip-tiny');
  mkdirSync(join(dir, 'onnx'));
  writeFileSync(join(dir, 'onnx', 'text_model.onnx'), 'not an onnx file');
  writeFileSync(join(dir, 'onnx', 'vision_model.onnx'), 'not an onnx file');
  const m = await ClipModel.load(dir, { cache: false, format: 'onnx' });
  await assert.rejects(m.encodeTexts(['a cat']), (e: Error) => {
    assert.match(e.message, /onnx\/text_model\.onnx: ONNX Runtime cannot load this text tower: /);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
});

test('torch checkpoints (a HF .bin, a bare OpenAI TorchScript .pt) are checked the same way, from declared shapes', { skip: SKIP_FIXTURES }, async () => {
  const dir = join(root, `bin-${n++}`);
  mkdirSync(dir);
  const cfg = readJson(fixture('hf-clip-tiny', 'config.json'));
  cfg.vision_config.num_hidden_layers = 1;
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  symlinkSync(fixture('pickles', 'hf-clip-tiny-pytorch_model.bin'), join(dir, 'pytorch_model.bin'));
  await refused(dir, /pytorch_model\.bin: the weights do not match the config:[\s\S]*"vision_model\.encoder\.layers\.1\.layer_norm1\.weight" is one block more/);

  const oc = readJson(fixture('openai-vit-tiny', 'open_clip_config.json'));
  oc.model_cfg.vision_cfg.layers = 3;
  const ocPath = join(root, `open_clip_config-${n++}.json`);
  writeFileSync(ocPath, JSON.stringify(oc));
  const pt = fixture('pickles', 'openai-vit-tiny-torchscript.pt');
  await assert.rejects(ClipModel.load(pt, { cache: false, tokenizerDir: CLIP_TOKENIZER, configPath: ocPath }), /missing tensor "visual\.transformer\.resblocks\.2\.ln_1\.weight"/);
  // Without a config file the shapes are the config: it loads and embeds.
  const m = await ClipModel.load(pt, { cache: false, tokenizerDir: CLIP_TOKENIZER });
  assert.equal((await m.encodeTexts(['a cat']))[0]!.length, 16);
  await m.release();
});

test('training from a scratch config checks it before sizing anything from it', { skip: SKIP_FIXTURES }, () => {
  const base = {
    projection_dim: 16,
    text_config: { hidden_size: 32, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 2, max_position_embeddings: 77 },
    vision_config: { hidden_size: 64, intermediate_size: 256, num_attention_heads: 4, num_hidden_layers: 2, image_size: 32, patch_size: 8 },
  };
  const write = (edit: (j: Json) => void): string => {
    const j = structuredClone(base) as Json;
    edit(j);
    const p = join(root, `scratch-${n++}.json`);
    writeFileSync(p, JSON.stringify(j));
    return p;
  };
  assert.doesNotThrow(() => fromConfig(write(() => {}), CLIP_TOKENIZER, 0));
  assert.throws(() => fromConfig(write((j) => (j.text_config.max_position_embeddings = 1e9)), CLIP_TOKENIZER, 0), /scratch-\d+\.json: text_config\.max_position_embeddings must be an integer <= 8192/);
  assert.throws(() => fromConfig(write((j) => (j.text_config.vocab_size = '49408')), CLIP_TOKENIZER, 0), /text_config\.vocab_size must be an integer >= 1, got "49408"/);
  assert.throws(() => fromConfig(write((j) => (j.vision_config.num_hidden_layers = 0)), CLIP_TOKENIZER, 0), /vision_config\.num_hidden_layers must be an integer >= 1, got 0/);
});

test('pipelineFromPreprocessorConfig refuses a zero std (the library path without a checkpoint)', () => {
  assert.throws(() => pipelineFromPreprocessorConfig({ image_std: [0.3, 0, 0.3] }), /image_std\[1\] must be greater than 0/);
  assert.doesNotThrow(() => pipelineFromPreprocessorConfig({ image_std: [0.3, 0.3, 0.3] }));
});
