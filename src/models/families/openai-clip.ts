// OpenAI / open_clip state-dict key names -> canonical tower names.
// OpenAI stores projections as [in, out] (x @ proj); canonical is Linear's [out, in], so they are transposed here.
import type { TensorSource } from '../../io/tensor.js';
import { TowerWeights } from '../weights.js';

const BLOCK = /^(visual|text)\.blocks\.(\d+)\.(.+)$/;
const BLOCK_PARTS: Record<string, string> = {
  'ln1.weight': 'ln_1.weight', 'ln1.bias': 'ln_1.bias',
  'ln2.weight': 'ln_2.weight', 'ln2.bias': 'ln_2.bias',
  'attn.qkv.weight': 'attn.in_proj_weight', 'attn.qkv.bias': 'attn.in_proj_bias',
  'attn.out.weight': 'attn.out_proj.weight', 'attn.out.bias': 'attn.out_proj.bias',
  'mlp.fc1.weight': 'mlp.c_fc.weight', 'mlp.fc1.bias': 'mlp.c_fc.bias',
  'mlp.fc2.weight': 'mlp.c_proj.weight', 'mlp.fc2.bias': 'mlp.c_proj.bias',
};
const DIRECT: Record<string, string> = {
  'visual.patch.weight': 'visual.conv1.weight',
  'visual.cls': 'visual.class_embedding',
  'visual.pos': 'visual.positional_embedding',
  'visual.ln_pre.weight': 'visual.ln_pre.weight',
  'visual.ln_pre.bias': 'visual.ln_pre.bias',
  'visual.ln_post.weight': 'visual.ln_post.weight',
  'visual.ln_post.bias': 'visual.ln_post.bias',
  'text.tok': 'token_embedding.weight',
  'text.pos': 'positional_embedding',
  'text.ln_final.weight': 'ln_final.weight',
  'text.ln_final.bias': 'ln_final.bias',
  logit_scale: 'logit_scale',
  // A bias CLIP's patch conv does not have: named only so that a checkpoint holding one is refused (shapes.ts).
  'visual.patch.bias': 'visual.conv1.bias',
};
const TRANSPOSED: Record<string, string> = { 'visual.proj': 'visual.proj', 'text.proj': 'text_projection' };

export function openaiClipKey(canonical: string): string | undefined {
  if (DIRECT[canonical]) return DIRECT[canonical];
  const m = BLOCK.exec(canonical);
  if (!m) return undefined;
  const [, tower, i, part] = m;
  const prefix = tower === 'visual' ? `visual.transformer.resblocks.${i}.` : `transformer.resblocks.${i}.`;
  return BLOCK_PARTS[part!] ? prefix + BLOCK_PARTS[part!] : undefined;
}

export function openaiClipWeights(src: TensorSource, prefix = ''): TowerWeights {
  return TowerWeights.fromSource(src, (name) => {
    if (TRANSPOSED[name]) return { keys: [prefix + TRANSPOSED[name]], transpose: true };
    // The canonical name is itself the key for the ResNet tower's own weights (visual.layer1...).
    return { keys: [prefix + (openaiClipKey(name) ?? name)] };
  });
}
