// BERT text tower (Chinese-CLIP, Taiyi; RoBERTa / XLM-R with `positionOffset`): word + position + token-type
// embeddings, embedding LayerNorm, post-LN blocks, then a pooling head. Canonical names (PyTorch layouts):
//   bert.embeddings.{word [V,D], pos [P,D], type [T,D]}, bert.embeddings.ln.{weight,bias}
//   bert.blocks.{i}.attn.qkv.{weight [3D,D], bias [3D]}, attn.out.*, ln1.* (after attention),
//   bert.blocks.{i}.mlp.fc1.*, mlp.fc2.*, ln2.* (after the MLP)
//   pooling 'cls-projection' / 'mean-projection': projection 'linear': text.proj [E,D] (no bias);
//     projection 'mlp': text.proj.fc1 [H,D], text.proj.fc2 [E,H] (no biases, exact GELU between)
//   pooling 'classifier':     bert.pooler.{weight,bias}, classifier.{weight,bias}
import { attr, type Graph } from '../graph/graph.js';
import { activation, layerNorm, linear, sliceToLengthOf } from '../graph/ops.js';
import type { BertConfig } from './config.js';
import { param } from './transformer.js';
import type { TowerOutput } from './vision-transformer.js';
import type { TowerWeights } from './weights.js';

/** torch.finfo(float32).min: what HF adds at masked key positions. */
const MASK_VALUE = -3.4028234663852886e38;

export interface BertTextOptions {
  /** int64 [B, T] token type ids; undefined = all zeros (the only type a single sentence uses). */
  tokenTypes?: string;
  /** int64 [B, T] attention mask (1 = attend); undefined = all ones (HF's default when none is passed). */
  mask?: string;
  /** ORT's com.microsoft Attention kernel (inference only). */
  fused?: boolean;
}

function bertAttention(g: Graph, x: string, w: TowerWeights, p: string, cfg: BertConfig, mask: { additive?: string; index?: string }, fused: boolean): string {
  const D = cfg.width;
  const H = cfg.heads;
  const hd = D / H;
  const qkvW = param(g, w, `${p}.attn.qkv.weight`, { linear: true });
  const qkvB = param(g, w, `${p}.attn.qkv.bias`);
  let merged: string;
  if (fused) {
    const inputs = [x, qkvW, qkvB];
    if (mask.index) inputs.push(mask.index);
    merged = g.op('Attention', inputs, { num_heads: attr.i(H) }, 'com.microsoft');
  } else {
    const qkv = linear(g, x, qkvW, qkvB);
    // [B, T, 3D] -> [B, T, 3, H, hd] -> [3, B, H, T, hd]
    const t = g.op('Transpose', [g.op('Reshape', [qkv, g.constI64([0, 0, 3, H, hd])])], { perm: attr.ints([2, 0, 3, 1, 4]) });
    const [q, k, v] = g.node('Split', [t, g.constI64([1, 1, 1])], { axis: attr.i(0) }, { outputs: 3 }).map(
      (s) => g.op('Squeeze', [s, g.constI64([0])]),
    ) as [string, string, string];
    const qs = g.op('Mul', [q, g.constF([1 / Math.sqrt(hd)], [])]);
    let scores = g.op('MatMul', [qs, g.op('Transpose', [k], { perm: attr.ints([0, 1, 3, 2]) })]);
    if (mask.additive) scores = g.op('Add', [scores, mask.additive]);
    const ctx = g.op('MatMul', [g.op('Softmax', [scores], { axis: attr.i(-1) }), v]);
    merged = g.op('Reshape', [g.op('Transpose', [ctx], { perm: attr.ints([0, 2, 1, 3]) }), g.constI64([0, 0, D])]);
  }
  return linear(g, merged, param(g, w, `${p}.attn.out.weight`, { linear: true }), param(g, w, `${p}.attn.out.bias`));
}

function bertBlock(g: Graph, x: string, w: TowerWeights, p: string, cfg: BertConfig, mask: { additive?: string; index?: string }, fused: boolean): string {
  const a = bertAttention(g, x, w, p, cfg, mask, fused);
  const x1 = layerNorm(g, g.op('Add', [x, a]), param(g, w, `${p}.ln1.weight`), param(g, w, `${p}.ln1.bias`), cfg.eps);
  const h = linear(g, x1, param(g, w, `${p}.mlp.fc1.weight`, { linear: true }), param(g, w, `${p}.mlp.fc1.bias`));
  const o = linear(g, activation(g, h, cfg.act), param(g, w, `${p}.mlp.fc2.weight`, { linear: true }), param(g, w, `${p}.mlp.fc2.bias`));
  return layerNorm(g, g.op('Add', [x1, o]), param(g, w, `${p}.ln2.weight`), param(g, w, `${p}.ln2.bias`), cfg.eps);
}

/**
 * ids int64 [B, T] -> pooled [B, E]: unlike the CLIP towers, `pooled` is the final text feature (the
 * pooling head includes its projection: text_projection for Chinese-CLIP, pooler + classifier for Taiyi).
 * hidden: the embedding output and each block's output.
 */
export function buildBertText(g: Graph, ids: string, w: TowerWeights, cfg: BertConfig, opts: BertTextOptions = {}): TowerOutput {
  const word = g.op('Gather', [param(g, w, 'bert.embeddings.word'), ids], { axis: attr.i(0) });
  let x: string;
  if (cfg.positionOffset === undefined) {
    // HF's default position ids are 0..T-1 whatever the padding, so a slice of the table is exact.
    x = g.op('Add', [word, sliceToLengthOf(g, param(g, w, 'bert.embeddings.pos'), ids, 1)]);
  } else {
    // RoBERTa counts only real tokens: cumsum(mask) * mask + padding_idx (HF derives the mask from
    // ids != padding_idx; the tokenizer's attention mask says the same for right-padded batches).
    const m = opts.mask ?? g.op('Add', [g.op('Mul', [ids, g.constI64([0], [])]), g.constI64([1], [])]);
    const pos = g.op('Add', [g.op('Mul', [g.op('CumSum', [m, g.constI64([1], [])]), m]), g.constI64([cfg.positionOffset], [])]);
    x = g.op('Add', [word, g.op('Gather', [param(g, w, 'bert.embeddings.pos'), pos], { axis: attr.i(0) })]);
  }
  if (opts.tokenTypes) {
    x = g.op('Add', [x, g.op('Gather', [param(g, w, 'bert.embeddings.type'), opts.tokenTypes], { axis: attr.i(0) })]);
  } else {
    // All-zero token types add row 0 to every position: a constant after folding, no Gather per token.
    const row0 = g.node('Gather', [param(g, w, 'bert.embeddings.type'), g.constI64([0], [])], { axis: attr.i(0) }, { outputs: ['bert.embeddings.type[0]'] })[0]!;
    x = g.op('Add', [x, row0]);
  }
  x = layerNorm(g, x, param(g, w, 'bert.embeddings.ln.weight'), param(g, w, 'bert.embeddings.ln.bias'), cfg.eps);

  const mask: { additive?: string; index?: string } = {};
  if (opts.mask) {
    if (opts.fused) {
      mask.index = g.op('Cast', [opts.mask], { to: attr.i(6) }); // int32 [B, T], the kernel's 2-D mask_index
    } else {
      // (1 - mask) * finfo.min as [B, 1, 1, T], broadcast over heads and query positions (as HF).
      const m = g.op('Cast', [opts.mask], { to: attr.i(1) });
      const add = g.op('Mul', [g.op('Sub', [g.constF([1], []), m]), g.constF([MASK_VALUE], [])]);
      mask.additive = g.op('Unsqueeze', [add, g.constI64([1, 2])]);
    }
  }
  const hidden = [x];
  for (let i = 0; i < cfg.layers; i++) {
    x = bertBlock(g, x, w, `bert.blocks.${i}`, cfg, mask, opts.fused ?? false);
    hidden.push(x);
  }
  const cls = g.op('Gather', [x, g.constI64([0], [])], { axis: attr.i(1) }); // [B, D]
  let pooled: string;
  if (cfg.pooling === 'cls-projection' || cfg.pooling === 'mean-projection') {
    const feat = cfg.pooling === 'cls-projection' ? cls : meanPool(g, x, opts.mask);
    if (cfg.projection === 'mlp') {
      const h = activation(g, linear(g, feat, param(g, w, 'text.proj.fc1', { linear: true })), 'gelu');
      pooled = linear(g, h, param(g, w, 'text.proj.fc2', { linear: true }));
    } else {
      pooled = linear(g, feat, param(g, w, 'text.proj', { linear: true }));
    }
  } else {
    const p = g.op('Tanh', [linear(g, cls, param(g, w, 'bert.pooler.weight', { linear: true }), param(g, w, 'bert.pooler.bias'))]);
    pooled = linear(g, p, param(g, w, 'classifier.weight', { linear: true }), param(g, w, 'classifier.bias'));
  }
  return { pooled, hidden };
}

/** x [B, T, D] -> [B, D]: the mean over the positions the mask keeps (all of them without one). */
function meanPool(g: Graph, x: string, mask: string | undefined): string {
  if (!mask) return g.op('ReduceMean', [x], { axes: attr.ints([1]), keepdims: attr.i(0) });
  const m = g.op('Unsqueeze', [g.op('Cast', [mask], { to: attr.i(1) }), g.constI64([2])]); // [B, T, 1]
  const sum = g.op('ReduceSum', [g.op('Mul', [x, m]), g.constI64([1])], { keepdims: attr.i(0) });
  const n = g.op('ReduceSum', [m, g.constI64([1])], { keepdims: attr.i(0) }); // [B, 1]
  return g.op('Div', [sum, n]);
}
