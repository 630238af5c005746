// Parity report: every family's features from the image files and caption texts (our decode, resize, crop,
// tokenizer and towers) against the reference goldens. `npm run parity [-- --json]`.
import { join, resolve } from 'node:path';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ClipModel, type LoadOptions } from '../src/runtime/clip-model.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { toFloat32 } from '../src/io/tensor.js';
import { flat, maxAbsDiff } from '../test/helpers.js';

const FIXTURES = process.env.CLIP_FIXTURES ?? resolve('..', 'shared', 'fixtures');
const fx = (...p: string[]) => join(FIXTURES, ...p);

/** Max abs difference; `relative`: as a fraction of the reference's largest magnitude. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>, relative = false): number {
  const scale = relative ? Math.max(...Array.from(b, Math.abs)) : 1;
  return maxAbsDiff(a, b) / scale;
}

interface Row { family: string; images: number; texts: number; image: number; text: number; note: string }

async function measure(family: string, path: string, goldenDir: string, opts: LoadOptions, textKey: 'captions' | 'labels' | 'texts', note: string, relativeImage = false): Promise<Row> {
  const meta = JSON.parse(readFileSync(join(goldenDir, 'golden.json'), 'utf8'));
  const g = new SafetensorsFile(join(goldenDir, 'golden.safetensors'));
  const m = await ClipModel.load(path, opts);
  try {
    const photos = (meta.photos as string[]).map((p) => fx('common', 'images', p));
    const img = await m.encodeImages(photos, { normalize: false });
    const bad = img.find((r) => !r.embedding);
    if (bad) throw new Error(`${family}: ${bad.error}`);
    const texts = meta[textKey] as string[];
    const txt = await m.encodeTexts(texts, { normalize: false, batchSize: 64 });
    const textGolden = g.has('text_features') ? 'text_features' : 'text_features_no_mask';
    return {
      family, images: photos.length, texts: texts.length, note,
      image: maxDiff(flat(img.map((r) => r.embedding!)), toFloat32(g.get('image_features')), relativeImage),
      text: maxDiff(flat(txt), toFloat32(g.get(textGolden))),
    };
  } finally {
    await m.release();
  }
}

async function main(): Promise<void> {
  if (!existsSync(fx('README.md'))) throw new Error(`reference fixtures not found at ${FIXTURES}`);
  const tok = { tokenizerDir: fx('common', 'tokenizer-clip') };
  const scratch = mkdtempSync(join(tmpdir(), 'clip-parity-'));
  const pair = join(scratch, 'taiyi.json');
  writeFileSync(pair, JSON.stringify({ text: fx('taiyi-text-tiny'), image: fx('hf-clip-tiny'), attention_mask: false }));
  const rows: Row[] = [];
  try {
    rows.push(await measure('hf-clip-tiny', fx('hf-clip-tiny'), fx('hf-clip-tiny'), {}, 'captions', 'safetensors, HF tokenizer + CLIPImageProcessor'));
    rows.push(await measure('hf-clip-tiny (onnx)', fx('hf-clip-tiny'), fx('hf-clip-tiny'), { format: 'onnx' }, 'captions', 'transformers.js ONNX export'));
    rows.push(await measure('openai-vit-tiny', fx('openai-vit-tiny'), fx('openai-vit-tiny'), tok, 'captions', 'open_clip layout, OpenAI BPE + torchvision'));
    rows.push(await measure('openai-rn-tiny', fx('openai-rn-tiny'), fx('openai-rn-tiny'), tok, 'captions', 'ModifiedResNet; image relative to max |feature| (~1e10)', true));
    rows.push(await measure('zh-clip-tiny', fx('zh-clip-tiny'), fx('zh-clip-tiny'), {}, 'captions', 'Chinese-CLIP, BERT WordPiece, 52 tokens'));
    rows.push(await measure('taiyi-text-tiny', pair, fx('taiyi-text-tiny'), {}, 'labels', 'BERT classifier logits + hf-clip-tiny image tower'));
    // Made in this repo (scripts/goldens/siglip.py), not in the shared fixtures.
    const siglip = resolve('test', 'goldens', 'siglip-tiny');
    rows.push(await measure('siglip-tiny', siglip, siglip, {}, 'texts', 'SigLIP, Unigram tokenizer padded to 64, MAP head, no crop'));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify(rows, null, 1));
    return;
  }
  console.log('| family | image files | max abs diff, image features | texts | max abs diff, text features | note |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.family} | ${r.images} | ${r.image.toExponential(1)} | ${r.texts} | ${r.text.toExponential(1)} | ${r.note} |`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
