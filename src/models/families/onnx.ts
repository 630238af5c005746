// ONNX exports in the transformers.js layout: onnx/vision_model.onnx (pixel_values -> image_embeds) and
// onnx/text_model.onnx (input_ids, attention_mask -> text_embeds) beside an HF config.json. They run as they
// are; the config says the sizes (through the HF family whose config it is) and nothing is built.
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { SafetensorsFile } from '../../io/safetensors.js';
import { toFloat32 } from '../../io/tensor.js';
import type { ClipConfig } from '../config.js';
import {
  checkLogitScale, findFile, hfPreprocess, readJson, requireFile, SOFTMAX, textInputs, tokenizerIn, withShards,
  type CheckpointLocation, type FamilyDescriptor,
} from '../family.js';
import { chineseClip } from './chinese-clip.js';
import { HF_WEIGHTS, hfClip } from './hf-clip.js';

/** HF exports take the attention mask and a fixed sequence length. */
const ONNX_HF_INPUTS = textInputs('onnx-hf', { attentionMask: true, padding: 'max', rowsIndependent: false });

/** The HF families whose config.json an export may carry; the first whose config it is parses it. */
const CONFIG_FAMILIES = [chineseClip, hfClip];

/** The `onnx/` folder (or a file in it) of a transformers.js-layout directory: its parent, and the variant a file names. */
function onnxFolder(loc: CheckpointLocation): { dir: string; variant?: string } | undefined {
  const { path, isDir } = loc;
  const parent = isDir && basename(path) === 'onnx' ? dirname(path) : !isDir && path.endsWith('.onnx') ? dirname(dirname(path)) : undefined;
  if (!parent || !existsSync(join(parent, 'config.json'))) return undefined;
  const variant = !isDir ? /_(quantized|fp16|int8|uint8|q4|bnb4|q4f16)\.onnx$/.exec(path)?.[0].replace('.onnx', '') : undefined;
  return { dir: parent, variant };
}

/** A model directory whose ONNX towers are wanted: asked for, or no weights beside them. */
function wantsOnnx(loc: CheckpointLocation): boolean {
  if (!loc.has('config.json')) return false;
  const format = loc.opts.format;
  const hasWeights = !!loc.file || withShards(HF_WEIGHTS).some((f) => loc.has(f));
  return format === 'onnx' || (format !== 'weights' && !hasWeights && loc.has('onnx'));
}

function readLogitScale(dir: string): number | undefined {
  const p = findFile(dir, ['model.safetensors']);
  if (!p) return undefined;
  const f = new SafetensorsFile(p);
  try {
    if (!f.has('logit_scale')) return undefined;
    const t = f.get('logit_scale');
    if (t.shape.some((d) => d !== 1)) throw new Error(`${p}: tensor "logit_scale" has shape [${t.shape.join(', ')}], expected []`);
    return checkLogitScale(toFloat32(t)[0]!, `${p}: tensor "logit_scale"`);
  } finally {
    f.close();
  }
}

export const onnxExport: FamilyDescriptor = {
  name: 'onnx',
  summary: 'ONNX exports (transformers.js layout): onnx/vision_model.onnx + onnx/text_model.onnx beside config.json',
  detect: (loc) => !!onnxFolder(loc) || wantsOnnx(loc),
  parseConfig: (json, origin) => ((CONFIG_FAMILIES.find((f) => f.matchesConfig!(json)) ?? hfClip).parseConfig(json, origin) as ClipConfig),
  open(loc) {
    const folder = onnxFolder(loc);
    const dir = folder?.dir ?? loc.dir;
    const opts = loc.opts;
    const variant = opts.onnxVariant ?? folder?.variant ?? '';
    const vision = requireFile(join(dir, 'onnx'), [`vision_model${variant}.onnx`], 'ONNX image tower');
    const text = requireFile(join(dir, 'onnx'), [`text_model${variant}.onnx`], 'ONNX text tower');
    const cfgPath = join(dir, 'config.json');
    const config = onnxExport.parseConfig(readJson(cfgPath), cfgPath) as ClipConfig;
    return {
      family: 'onnx', path: dir, projectionDim: config.projectionDim,
      image: { kind: 'onnx', path: vision }, text: { kind: 'onnx', path: text },
      textInputs: ONNX_HF_INPUTS,
      outputs: { image: 'image_embeds', text: 'text_embeds' },
      tokenizerDir: tokenizerIn(dir, opts), tokenizerMode: 'hf',
      contextLength: config.text.contextLength,
      preprocess: hfPreprocess(dir, config.vision.imageSize),
      // The exported towers carry no logit_scale; read it from the weights when they are there too.
      logitScale: readLogitScale(dir) ?? config.logitScaleInit,
      score: SOFTMAX,
      config,
    };
  },
  towers: { image: ['onnx'], text: ['onnx'], pooling: { image: ['class-token'], text: ['eot'] } },
  tokenizer: { mode: 'hf' },
  score: SOFTMAX,
  // No hub list of its own: an export's repo is an HF family's repo (config.json), whose list has `onnx: true`.
};
