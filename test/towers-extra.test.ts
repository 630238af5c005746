// Parity of the ModifiedResNet, OpenAI ViT (open_clip config), Chinese-CLIP and Taiyi towers with the
// Python reference goldens, fed the goldens' own inputs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32, type RawTensor } from '../src/io/tensor.js';
import { buildImageGraph, buildTextGraph } from '../src/models/clip-graph.js';
import { clipConfigFromHF } from '../src/models/config.js';
import { buildBertTextGraph, buildResNetImageGraph } from '../src/models/extra-graphs.js';
import { chineseClipKeys, chineseClipWeights } from '../src/models/families/chinese-clip.js';
import { hfClipWeights } from '../src/models/families/hf-clip.js';
import { openaiClipWeights } from '../src/models/families/openai-clip.js';
import { taiyiKeys, taiyiWeights } from '../src/models/families/taiyi.js';
import { chineseClipConfig } from '../src/models/families/chinese-clip.js';
import { openClipConfig } from '../src/models/families/openai-clip.js';
import { taiyiBertConfig } from '../src/models/families/taiyi.js';
import type { Graph } from '../src/graph/graph.js';
import { createSession, ort } from '../src/runtime/session.js';
import { fixture, SKIP_FIXTURES } from './fixtures.js';

const TOL = 1e-4;
const json = (...p: string[]) => JSON.parse(readFileSync(fixture(...p), 'utf8'));

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length mismatch');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, tol = TOL): void {
  const d = maxDiff(actual, expected);
  assert.ok(d <= tol, `${what}: max |diff| ${d} > ${tol}`);
}

const f32 = (t: RawTensor) => new ort.Tensor('float32', toFloat32(t), t.shape);
const i64 = (t: RawTensor) => new ort.Tensor('int64', BigInt64Array.from(toFloat32(t), (x) => BigInt(x)), t.shape);

async function run(g: Graph, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const out = await (await createSession(g)).run(feeds);
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

function normalizeRows(x: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[r * dim + d]! ** 2;
    const n = Math.sqrt(s);
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d]! / n;
  }
  return out;
}

/** CLIP's logits_per_image: exp(logit_scale) * normalized image @ normalized text^T. */
function logitsPerImage(img: Float32Array, txt: Float32Array, logitScale: number, dim: number): Float32Array {
  const a = normalizeRows(img, dim);
  const b = normalizeRows(txt, dim);
  const B = a.length / dim;
  const N = b.length / dim;
  const out = new Float32Array(B * N);
  const scale = Math.exp(logitScale);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += a[i * dim + d]! * b[j * dim + d]!;
      out[i * N + j] = scale * s;
    }
  }
  return out;
}

function softmaxRows(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    const row = x.subarray(r * n, r * n + n);
    const mx = Math.max(...row);
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(row[j]! - mx);
    for (let j = 0; j < n; j++) out[r * n + j] = Math.exp(row[j]! - mx) / s;
  }
  return out;
}

/** OpenAI pools at tokens.argmax(-1) (the first EOT); pool_index is flat b*T + t. */
function argmaxPool(tokens: RawTensor): ort.Tensor {
  const ids = toFloat32(tokens);
  const [B, T] = tokens.shape as [number, number];
  const idx = new BigInt64Array(B);
  for (let b = 0; b < B; b++) {
    let k = 0;
    for (let t = 1; t < T; t++) if (ids[b * T + t]! > ids[b * T + k]!) k = t;
    idx[b] = BigInt(b * T + k);
  }
  return new ort.Tensor('int64', idx, [B]);
}

describe('family configs', () => {
  it('open_clip configs: OpenAI head counts and tower kinds', { skip: SKIP_FIXTURES }, () => {
    const rn = openClipConfig(json('openai-rn-tiny', 'open_clip_config.json'));
    assert.equal(rn.vision.kind, 'resnet');
    if (rn.vision.kind === 'resnet') {
      assert.deepEqual(rn.vision.layers, [1, 1, 1, 1]);
      assert.equal(rn.vision.heads, 8); // width 16 * 32 // 64
      assert.equal(rn.vision.outputDim, 16);
    }
    const vit = openClipConfig(json('openai-vit-tiny', 'open_clip_config.json'));
    assert.equal(vit.vision.kind, 'vit');
    if (vit.vision.kind === 'vit') {
      assert.equal(vit.vision.heads, 1); // width 64 // 64
      assert.equal(vit.vision.patchSize, 32);
      assert.equal(vit.vision.act, 'quick_gelu');
    }
    assert.equal(vit.text.kind, 'clip-text');
    assert.equal(vit.text.heads, 2);
    assert.equal(vit.text.mlpWidth, 64);
  });

  it('Chinese-CLIP and Taiyi configs', { skip: SKIP_FIXTURES }, () => {
    const zh = chineseClipConfig(json('zh-clip-tiny', 'config.json'));
    assert.equal(zh.text.kind, 'bert');
    if (zh.text.kind === 'bert') {
      assert.equal(zh.text.pooling, 'cls-projection');
      assert.equal(zh.text.eps, 1e-12);
      assert.equal(zh.text.act, 'gelu');
    }
    assert.equal(zh.vision.kind, 'vit');
    assert.equal(zh.projectionDim, 16);
    const ty = taiyiBertConfig(json('taiyi-text-tiny', 'config.json'));
    assert.equal(ty.pooling, 'classifier');
    assert.equal(ty.numLabels, 16);
    assert.equal(ty.heads, 4);
  });

  it('key mappings pack q/k/v and keep the vision tower on CLIP names', () => {
    assert.deepEqual(chineseClipKeys('bert.blocks.1.attn.qkv.bias'), [
      'text_model.encoder.layer.1.attention.self.query.bias',
      'text_model.encoder.layer.1.attention.self.key.bias',
      'text_model.encoder.layer.1.attention.self.value.bias',
    ]);
    assert.deepEqual(chineseClipKeys('visual.ln_pre.weight'), ['vision_model.pre_layrnorm.weight']);
    assert.deepEqual(chineseClipKeys('text.proj'), ['text_projection.weight']);
    assert.equal(chineseClipKeys('text.tok'), undefined);
    assert.deepEqual(taiyiKeys('bert.blocks.0.ln2.weight'), ['bert.encoder.layer.0.output.LayerNorm.weight']);
    assert.deepEqual(taiyiKeys('classifier.weight'), ['classifier.weight']);
  });
});

describe('OpenAI CLIP from open_clip_config.json', () => {
  for (const model of ['openai-rn-tiny', 'openai-vit-tiny']) {
    it(`${model}: image_features, text_features, logits_per_image`, { skip: SKIP_FIXTURES }, async () => {
      const cfg = openClipConfig(json(model, 'open_clip_config.json'));
      const w = openaiClipWeights(new SafetensorsFile(fixture(model, 'open_clip_model.safetensors')));
      const gold = new SafetensorsFile(fixture(model, 'golden.safetensors'));
      const pixels = { pixel_values: f32(gold.get('pixel_values')) };
      const refImg = toFloat32(gold.get('image_features'));
      const dim = cfg.projectionDim;

      const variants = cfg.vision.kind === 'resnet'
        ? [buildResNetImageGraph(cfg, w), buildResNetImageGraph(cfg, w, { foldBatchNorm: false })]
        : [buildImageGraph(cfg, w), buildImageGraph(cfg, w, { fused: true })];
      let img: Float32Array = new Float32Array(0);
      for (const g of variants) {
        const out = await run(g, pixels);
        img = out.image_features!;
        // The random RN tower's features reach ~2e10 (no bn3 zero-init, residuals compound), where one
        // float32 ulp is ~2e3: compare relative to the largest magnitude, i.e. 1e-4 absolute at unit scale.
        const scale = Math.max(1, ...refImg.map(Math.abs));
        close(img.map((x) => x / scale), refImg.map((x) => x / scale), `${model} image_features (/${scale})`);
        close(out.image_embeds!, normalizeRows(refImg, dim), `${model} image_embeds`);
      }

      const tokens = gold.get('tokens');
      const txt = (await run(buildTextGraph(cfg, w), { input_ids: i64(tokens), pool_index: argmaxPool(tokens) })).text_features!;
      close(txt, toFloat32(gold.get('text_features')), `${model} text_features`);
      const logits = logitsPerImage(img, txt, w.get('logit_scale').data[0]!, dim);
      close(logits, toFloat32(gold.get('logits_per_image')), `${model} logits_per_image`);
    });
  }
});

describe('Chinese-CLIP (zh-clip-tiny)', () => {
  it('text_features (masked BERT, [CLS] projection), image_features, logits_per_image', { skip: SKIP_FIXTURES }, async () => {
    const cfg = chineseClipConfig(json('zh-clip-tiny', 'config.json'));
    const w = chineseClipWeights(new SafetensorsFile(fixture('zh-clip-tiny', 'model.safetensors')));
    const gold = new SafetensorsFile(fixture('zh-clip-tiny', 'golden.safetensors'));
    // The graph builds all-zero token types itself; the golden's must be those.
    assert.ok(toFloat32(gold.get('token_type_ids')).every((x) => x === 0));
    const img = (await run(buildImageGraph(cfg, w), { pixel_values: f32(gold.get('pixel_values')) })).image_features!;
    close(img, toFloat32(gold.get('image_features')), 'zh image_features');
    const feeds = { input_ids: i64(gold.get('input_ids')), attention_mask: i64(gold.get('attention_mask')) };
    for (const fused of [false, true]) {
      const out = await run(buildBertTextGraph(cfg, w, { masked: true, fused }), feeds);
      close(out.text_features!, toFloat32(gold.get('text_features')), `zh text_features (fused ${fused})`);
      close(out.text_embeds!, normalizeRows(toFloat32(gold.get('text_features')), cfg.projectionDim), 'zh text_embeds');
      const logits = logitsPerImage(img, out.text_features!, w.get('logit_scale').data[0]!, cfg.projectionDim);
      close(logits, toFloat32(gold.get('logits_per_image')), 'zh logits_per_image');
    }
  });
});

describe('Taiyi (taiyi-text-tiny + hf-clip-tiny image tower)', () => {
  it('text_features_no_mask, text_features_masked, logits_per_image, probs', { skip: SKIP_FIXTURES }, async () => {
    const cfg = taiyiBertConfig(json('taiyi-text-tiny', 'config.json'));
    const w = taiyiWeights(new SafetensorsFile(fixture('taiyi-text-tiny', 'model.safetensors')));
    const gold = new SafetensorsFile(fixture('taiyi-text-tiny', 'golden.safetensors'));
    const ids = i64(gold.get('input_ids'));
    const labels = gold.get('input_ids').shape[0]!;
    for (const fused of [false, true]) {
      const noMask = (await run(buildBertTextGraph(cfg, w, { masked: false, fused }), { input_ids: ids })).text_features!;
      close(noMask, toFloat32(gold.get('text_features_no_mask')), `taiyi text_features_no_mask (fused ${fused})`);
      const masked = (await run(buildBertTextGraph(cfg, w, { masked: true, fused }), {
        input_ids: ids, attention_mask: i64(gold.get('attention_mask')),
      })).text_features!;
      close(masked, toFloat32(gold.get('text_features_masked')), `taiyi text_features_masked (fused ${fused})`);
    }

    // Image side: hf-clip-tiny's tower on its own golden pixels (the same six photos).
    const hcfg = clipConfigFromHF(json('hf-clip-tiny', 'config.json'));
    const hw = hfClipWeights(new SafetensorsFile(fixture('hf-clip-tiny', 'model.safetensors')));
    const hgold = new SafetensorsFile(fixture('hf-clip-tiny', 'golden.safetensors'));
    const img = (await run(buildImageGraph(hcfg, hw), { pixel_values: f32(hgold.get('pixel_values')) })).image_features!;
    close(img, toFloat32(gold.get('image_features')), 'taiyi image_features');
    const txt = (await run(buildBertTextGraph(cfg, w, { masked: false }), { input_ids: ids })).text_features!;
    const logits = logitsPerImage(img, txt, hw.get('logit_scale').data[0]!, hcfg.projectionDim);
    close(logits, toFloat32(gold.get('logits_per_image')), 'taiyi logits_per_image');
    close(softmaxRows(logits, labels), toFloat32(gold.get('probs')), 'taiyi probs');
  });
});
