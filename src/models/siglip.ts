// SigLIP's towers (transformers' SiglipModel), built on the shared pre-LN transformer block.
// Vision: patch conv with bias, one position embedding per patch (no class token), encoder, post-LN,
// then the multihead attention pooling head (MAP): a learned probe attends over the sequence, followed
// by LayerNorm + MLP with a residual. Text: token + position embeddings, encoder WITHOUT a causal mask,
// final LN, the last position pooled (texts are padded to the full length with </s>), head Linear.
// Canonical names (families/siglip.ts maps them to checkpoint keys):
//   visual.patch.{weight,bias}, visual.pos [N, D], visual.blocks.{i}.*, visual.ln_post.*,
//   visual.head.probe [1, 1, D], visual.head.attn.{qkv,out}.{weight,bias}, visual.head.ln.*, visual.head.mlp.fc{1,2}.*
//   text.tok, text.pos, text.blocks.{i}.*, text.ln_final.*, text.proj [P, D] (+ text.proj.bias)
import { attr, Graph } from '../graph/graph.js';
import { activation, l2normalize, layerNorm, linear, sliceToLengthOf } from '../graph/ops.js';
import type { BuildOptions } from './clip-graph.js';
import type { TransformerConfig } from './config.js';
import { blocks, type Expect } from './shapes.js';
import { param, transformerBlock } from './transformer.js';
import type { TowerOutput } from './vision-transformer.js';
import type { TowerWeights } from './weights.js';

export interface SiglipVisionConfig extends TransformerConfig {
  kind: 'siglip-vit';
  imageSize: number;
  patchSize: number;
}

export interface SiglipTextConfig extends TransformerConfig {
  kind: 'siglip-text';
  vocabSize: number;
  contextLength: number;
  /** Width of the head's output (text_config.projection_size, default hidden_size): the shared embedding width. */
  projectionDim: number;
}

// The two tower kinds join the config unions (models/config.ts), so code that switches on a kind sees them.
declare module './config.js' {
  interface VisionConfigKinds {
    'siglip-vit': SiglipVisionConfig;
  }
  interface TextConfigKinds {
    'siglip-text': SiglipTextConfig;
  }
}

/** The attention pooling head: probe [1, 1, D] queries x [B, N, D]; returns [B, D]. */
function mapHead(g: Graph, x: string, w: TowerWeights, cfg: SiglipVisionConfig): string {
  const D = cfg.width;
  const H = cfg.heads;
  const hd = D / H;
  const p = 'visual.head';
  // nn.MultiheadAttention's packed in_proj: rows [0, D) are q, [D, 2D) k, [2D, 3D) v.
  const qkvW = param(g, w, `${p}.attn.qkv.weight`, { linear: true });
  const qkvB = param(g, w, `${p}.attn.qkv.bias`);
  const cols = (t: string, k: number) => g.op('Slice', [t, g.constI64([k * D]), g.constI64([(k + 1) * D]), g.constI64([2])]);
  const q = cols(linear(g, param(g, w, `${p}.probe`), qkvW, qkvB), 0); // [1, 1, D]
  const kv = linear(g, x, qkvW, qkvB); // [B, N, 3D]; its q columns are unused (one small extra matmul)
  const heads = (t: string, perm: number[]) => g.op('Transpose', [g.op('Reshape', [t, g.constI64([0, 0, H, hd])])], { perm: attr.ints(perm) });
  const qh = g.op('Mul', [heads(q, [0, 2, 1, 3]), g.constF([1 / Math.sqrt(hd)], [])]); // [1, H, 1, hd]
  const kh = heads(cols(kv, 1), [0, 2, 3, 1]); // [B, H, hd, N]
  const vh = heads(cols(kv, 2), [0, 2, 1, 3]); // [B, H, N, hd]
  const probs = g.op('Softmax', [g.op('MatMul', [qh, kh])], { axis: attr.i(-1) }); // [B, H, 1, N]
  const ctx = g.op('Transpose', [g.op('MatMul', [probs, vh])], { perm: attr.ints([0, 2, 1, 3]) }); // [B, 1, H, hd]
  const attn = linear(g, g.op('Reshape', [ctx, g.constI64([0, 1, D])]),
    param(g, w, `${p}.attn.out.weight`, { linear: true }), param(g, w, `${p}.attn.out.bias`));
  const h = layerNorm(g, attn, param(g, w, `${p}.ln.weight`), param(g, w, `${p}.ln.bias`), cfg.eps);
  const m = linear(g, activation(g, linear(g, h, param(g, w, `${p}.mlp.fc1.weight`, { linear: true }), param(g, w, `${p}.mlp.fc1.bias`)), cfg.act),
    param(g, w, `${p}.mlp.fc2.weight`, { linear: true }), param(g, w, `${p}.mlp.fc2.bias`));
  return g.op('Reshape', [g.op('Add', [attn, m]), g.constI64([-1, D])]);
}

export function buildSiglipVision(g: Graph, pixels: string, w: TowerWeights, cfg: SiglipVisionConfig, opts: { fused?: boolean } = {}): TowerOutput {
  const D = cfg.width;
  const patches = g.op('Conv', [pixels, param(g, w, 'visual.patch.weight'), param(g, w, 'visual.patch.bias')], {
    kernel_shape: attr.ints([cfg.patchSize, cfg.patchSize]),
    strides: attr.ints([cfg.patchSize, cfg.patchSize]),
  });
  const seq = g.op('Transpose', [g.op('Reshape', [patches, g.constI64([0, D, -1])])], { perm: attr.ints([0, 2, 1]) });
  let x = g.op('Add', [seq, param(g, w, 'visual.pos')]);
  const hidden = [x];
  for (let i = 0; i < cfg.layers; i++) {
    x = transformerBlock(g, x, w, `visual.blocks.${i}`, cfg, { fused: opts.fused });
    hidden.push(x);
  }
  x = layerNorm(g, x, param(g, w, 'visual.ln_post.weight'), param(g, w, 'visual.ln_post.bias'), cfg.eps);
  hidden.push(x);
  return { pooled: mapHead(g, x, w, cfg), hidden };
}

/** input_ids [B, T] (padded to the full length: the last position is pooled) -> head output [B, P]. */
export function buildSiglipText(g: Graph, ids: string, w: TowerWeights, cfg: SiglipTextConfig, opts: { fused?: boolean } = {}): TowerOutput {
  const tok = g.op('Gather', [param(g, w, 'text.tok'), ids], { axis: attr.i(0) });
  let x = g.op('Add', [tok, sliceToLengthOf(g, param(g, w, 'text.pos'), ids, 1)]);
  const hidden = [x];
  for (let i = 0; i < cfg.layers; i++) {
    x = transformerBlock(g, x, w, `text.blocks.${i}`, cfg, { fused: opts.fused });
    hidden.push(x);
  }
  const last = layerNorm(g, x, param(g, w, 'text.ln_final.weight'), param(g, w, 'text.ln_final.bias'), cfg.eps);
  hidden.push(last);
  const end = g.op('Slice', [last, g.constI64([-1]), g.constI64([2 ** 53]), g.constI64([1])]);
  const pooled = linear(g, g.op('Reshape', [end, g.constI64([-1, cfg.width])]), param(g, w, 'text.proj', { linear: true }), param(g, w, 'text.proj.bias'));
  return { pooled, hidden };
}

function finish(g: Graph, out: TowerOutput, prefix: 'image' | 'text', opts: BuildOptions): Graph {
  g.output(out.pooled, `${prefix}_features`, 'float32', ['batch', 'dim']);
  g.output(l2normalize(g, out.pooled), `${prefix}_embeds`, 'float32', ['batch', 'dim']);
  if (opts.hiddenStates) out.hidden.forEach((h, i) => g.output(h, `${prefix}_hidden_${i}`));
  return g;
}

/** pixel_values [B, 3, S, S] -> image_features (the pooled head output: SigLIP has no projection) and image_embeds. */
export function buildSiglipImageGraph(cfg: SiglipVisionConfig, w: TowerWeights, opts: BuildOptions = {}): Graph {
  const g = new Graph('siglip_image');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, cfg.imageSize, cfg.imageSize]);
  return finish(g, buildSiglipVision(g, pixels, w, cfg, opts), 'image', opts);
}

/** input_ids [B, T] -> text_features and text_embeds. */
export function buildSiglipTextGraph(cfg: SiglipTextConfig, w: TowerWeights, opts: BuildOptions = {}): Graph {
  const g = new Graph('siglip_text');
  const ids = g.input('input_ids', 'int64', ['batch', 'sequence']);
  return finish(g, buildSiglipText(g, ids, w, cfg, opts), 'text', opts);
}

/** Every tensor the vision tower reads, with the shape its config implies (the descriptor checks them: shapes.ts checkShapes). */
export function siglipVisionShapes(v: SiglipVisionConfig): Expect[] {
  const D = v.width;
  const M = v.mlpWidth;
  const grid = Math.floor(v.imageSize / v.patchSize);
  const why = 'vision config';
  const e = (name: string, shape: number[], w = why): Expect => ({ name, shape, why: w });
  return [
    e('visual.patch.weight', [D, 3, v.patchSize, v.patchSize]), e('visual.patch.bias', [D]),
    e('visual.pos', [grid * grid, D], 'vision image_size / patch_size and hidden_size'),
    ...blocks('visual.blocks', v, why),
    e('visual.ln_post.weight', [D]), e('visual.ln_post.bias', [D]),
    e('visual.head.probe', [1, 1, D]),
    e('visual.head.attn.qkv.weight', [3 * D, D]), e('visual.head.attn.qkv.bias', [3 * D]),
    e('visual.head.attn.out.weight', [D, D]), e('visual.head.attn.out.bias', [D]),
    e('visual.head.ln.weight', [D]), e('visual.head.ln.bias', [D]),
    e('visual.head.mlp.fc1.weight', [M, D]), e('visual.head.mlp.fc1.bias', [M]),
    e('visual.head.mlp.fc2.weight', [D, M]), e('visual.head.mlp.fc2.bias', [D]),
  ];
}

export function siglipTextShapes(t: SiglipTextConfig): Expect[] {
  const D = t.width;
  const why = 'text config';
  return [
    { name: 'text.tok', shape: [t.vocabSize, D], why: 'text vocab_size and hidden_size' },
    { name: 'text.pos', shape: [t.contextLength, D], why: 'text max_position_embeddings and hidden_size' },
    ...blocks('text.blocks', t, why),
    { name: 'text.ln_final.weight', shape: [D], why }, { name: 'text.ln_final.bias', shape: [D], why },
    { name: 'text.proj', shape: [t.projectionDim, D], why: 'text projection_size and hidden_size' },
    { name: 'text.proj.bias', shape: [t.projectionDim], why: 'text projection_size' },
    { name: 'logit_bias', shape: [], why: 'a scalar' },
  ];
}
