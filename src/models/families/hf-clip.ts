// The Hugging Face CLIP family: CLIPModel key names -> canonical tower names, and its descriptor.
import type { TensorSource } from '../../io/tensor.js';
import { buildTextGraph } from '../clip-graph.js';
import { clipConfigFromHF } from '../config.js';
import {
  built, CLIP_TEXT_INPUTS, hfPreprocess, imageTower, logitScaleOf, openHfLayout, OURS, SOFTMAX,
  textSource, tokenizerIn, type FamilyDescriptor,
} from '../family.js';
import { checkWeightShapes } from '../shapes.js';
import { TowerWeights } from '../weights.js';

const BLOCK = /^(visual|text)\.blocks\.(\d+)\.(.+)$/;
const BLOCK_PARTS: Record<string, string> = {
  'ln1.weight': 'layer_norm1.weight', 'ln1.bias': 'layer_norm1.bias',
  'ln2.weight': 'layer_norm2.weight', 'ln2.bias': 'layer_norm2.bias',
  'attn.out.weight': 'self_attn.out_proj.weight', 'attn.out.bias': 'self_attn.out_proj.bias',
  'mlp.fc1.weight': 'mlp.fc1.weight', 'mlp.fc1.bias': 'mlp.fc1.bias',
  'mlp.fc2.weight': 'mlp.fc2.weight', 'mlp.fc2.bias': 'mlp.fc2.bias',
};
const DIRECT: Record<string, string> = {
  'visual.patch.weight': 'vision_model.embeddings.patch_embedding.weight',
  'visual.cls': 'vision_model.embeddings.class_embedding',
  'visual.pos': 'vision_model.embeddings.position_embedding.weight',
  'visual.ln_pre.weight': 'vision_model.pre_layrnorm.weight',
  'visual.ln_pre.bias': 'vision_model.pre_layrnorm.bias',
  'visual.ln_post.weight': 'vision_model.post_layernorm.weight',
  'visual.ln_post.bias': 'vision_model.post_layernorm.bias',
  'visual.proj': 'visual_projection.weight',
  'text.tok': 'text_model.embeddings.token_embedding.weight',
  'text.pos': 'text_model.embeddings.position_embedding.weight',
  'text.ln_final.weight': 'text_model.final_layer_norm.weight',
  'text.ln_final.bias': 'text_model.final_layer_norm.bias',
  'text.proj': 'text_projection.weight',
  logit_scale: 'logit_scale',
  // Biases CLIP does not have: named only so that a checkpoint holding one is refused (shapes.ts), not misread.
  'visual.patch.bias': 'vision_model.embeddings.patch_embedding.bias',
  'visual.proj.bias': 'visual_projection.bias',
  'text.proj.bias': 'text_projection.bias',
};

/** clip-ts's conv stem (config.ts VitConfig.convStem); not part of transformers' CLIPVisionEmbeddings. */
const STEM = /^visual\.stem\.(\d+)\.(weight|bias)$/;

/** Checkpoint key(s) behind a canonical name; qkv is packed from three HF tensors. */
export function hfClipKeys(canonical: string): string[] | undefined {
  if (DIRECT[canonical]) return [DIRECT[canonical]];
  const stem = STEM.exec(canonical);
  if (stem) return [`vision_model.embeddings.conv_stem.${stem[1]}.${stem[2]}`];
  const m = BLOCK.exec(canonical);
  if (!m) return undefined;
  const [, tower, i, part] = m;
  const prefix = `${tower === 'visual' ? 'vision_model' : 'text_model'}.encoder.layers.${i}.`;
  if (part === 'attn.qkv.weight' || part === 'attn.qkv.bias') {
    const kind = part.endsWith('weight') ? 'weight' : 'bias';
    return ['q', 'k', 'v'].map((x) => `${prefix}self_attn.${x}_proj.${kind}`);
  }
  return BLOCK_PARTS[part!] ? [prefix + BLOCK_PARTS[part!]] : undefined;
}

export function hfClipWeights(src: TensorSource): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
    const keys = hfClipKeys(name);
    return keys && { keys };
  });
}

/** config.json of a Hugging Face CLIPModel. */
const isHfClipConfig = (json: Record<string, any>): boolean => json.model_type === 'clip' || json.text_config?.model_type === 'clip_text_model';

export const HF_WEIGHTS = ['model.safetensors', 'pytorch_model.bin'];
/** The small files an HF checkpoint may ship (config, image processor, tokenizer in its several layouts). */
export const HF_META = ['config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.json', 'merges.txt', 'vocab.txt'];

/** Hugging Face CLIPModel: config.json (model_type "clip") + model.safetensors / pytorch_model.bin. */
export const hfClip: FamilyDescriptor = {
  name: 'hf-clip',
  summary: 'Hugging Face CLIPModel: config.json (model_type "clip"), model.safetensors or pytorch_model.bin',
  detect: (loc) => {
    const cfg = loc.config();
    return !!cfg && isHfClipConfig(cfg);
  },
  matchesConfig: isHfClipConfig,
  parseConfig: (json, origin) => clipConfigFromHF(json, origin),
  weights: hfClipWeights,
  open(loc) {
    const { config, w, files, logitScale } = openHfLayout(loc, HF_WEIGHTS, clipConfigFromHF, hfClipWeights, (w, config) => {
      checkWeightShapes(w, config);
      return { logitScale: logitScaleOf(w, config.logitScaleInit) };
    });
    return {
      family: 'hf-clip', path: loc.path, projectionDim: config.projectionDim,
      image: imageTower(config, w, files),
      text: built((o) => buildTextGraph(config, w, o), files, textSource(config)),
      textInputs: CLIP_TEXT_INPUTS, outputs: OURS,
      tokenizerDir: tokenizerIn(loc.dir, loc.opts), tokenizerMode: 'hf',
      contextLength: config.text.contextLength,
      preprocess: hfPreprocess(loc.dir, config.vision.imageSize),
      logitScale, score: SOFTMAX,
      config, weights: w,
    };
  },
  towers: { image: ['vit'], text: ['clip-text'], pooling: { image: ['class-token'], text: ['eot', 'argmax'] } },
  tokenizer: { mode: 'hf' },
  score: SOFTMAX,
  train: { loss: 'softmax', saveAs: 'clip-config' },
  hub: { marker: 'config.json', meta: HF_META, weights: HF_WEIGHTS, onnx: true },
};
