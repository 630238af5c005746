// Random initial weights for training from a config, with the distributions of transformers'
// CLIPPreTrainedModel._init_weights (normal with per-module std, LayerNorm 1/0, Linear biases 0,
// logit_scale = logit_scale_init_value). Produced in HF key layout, so a scratch model enters training
// (and gets saved) exactly like a loaded checkpoint.
import type { RawTensor, TensorSource } from '../io/tensor.js';
import { Rng, STREAM } from '../tasks/rng.js';

type Json = Record<string, any>;

interface Spec {
  name: string;
  shape: number[];
  /** Standard deviation of a normal init; 'one'/'zero' for constants. */
  init: number | 'one' | 'zero';
}

function towerSpecs(prefix: string, layers: number, width: number, mlp: number, factor: number): Spec[] {
  const inStd = width ** -0.5 * (2 * layers) ** -0.5 * factor;
  const out: Spec[] = [];
  for (let i = 0; i < layers; i++) {
    const p = `${prefix}.encoder.layers.${i}.`;
    for (const x of ['q', 'k', 'v']) {
      out.push({ name: `${p}self_attn.${x}_proj.weight`, shape: [width, width], init: inStd });
      out.push({ name: `${p}self_attn.${x}_proj.bias`, shape: [width], init: 'zero' });
    }
    out.push({ name: `${p}self_attn.out_proj.weight`, shape: [width, width], init: width ** -0.5 * factor });
    out.push({ name: `${p}self_attn.out_proj.bias`, shape: [width], init: 'zero' });
    out.push({ name: `${p}mlp.fc1.weight`, shape: [mlp, width], init: (2 * width) ** -0.5 * factor });
    out.push({ name: `${p}mlp.fc1.bias`, shape: [mlp], init: 'zero' });
    out.push({ name: `${p}mlp.fc2.weight`, shape: [width, mlp], init: inStd });
    out.push({ name: `${p}mlp.fc2.bias`, shape: [width], init: 'zero' });
    for (const ln of ['layer_norm1', 'layer_norm2']) {
      out.push({ name: `${p}${ln}.weight`, shape: [width], init: 'one' }, { name: `${p}${ln}.bias`, shape: [width], init: 'zero' });
    }
  }
  return out;
}

const norm = (name: string, width: number): Spec[] => [
  { name: `${name}.weight`, shape: [width], init: 'one' }, { name: `${name}.bias`, shape: [width], init: 'zero' },
];

/** Every CLIPModel tensor with its init, from a complete HF CLIPConfig. */
export function initSpecs(cfg: Json): Spec[] {
  const t = cfg.text_config;
  const v = cfg.vision_config;
  const f = cfg.initializer_factor ?? 1.0;
  const proj = cfg.projection_dim;
  const vRange = (v.initializer_range ?? 0.02) * f;
  const patches = (v.image_size / v.patch_size) ** 2;
  // clip-ts's conv stem: He-normal kernels (std sqrt(2 / fan_in), for the ReLU after each), zero biases.
  const stem: number[] = v.conv_stem ?? [];
  const stemSpecs = stem.flatMap((ch, i): Spec[] => [
    { name: `vision_model.embeddings.conv_stem.${i}.weight`, shape: [ch, stem[i - 1] ?? 3, 3, 3], init: Math.sqrt(2 / ((stem[i - 1] ?? 3) * 9)) },
    { name: `vision_model.embeddings.conv_stem.${i}.bias`, shape: [ch], init: 'zero' },
  ]);
  const kernel = v.patch_size / 2 ** stem.length;
  return [
    { name: 'text_model.embeddings.token_embedding.weight', shape: [t.vocab_size, t.hidden_size], init: 0.02 * f },
    { name: 'text_model.embeddings.position_embedding.weight', shape: [t.max_position_embeddings, t.hidden_size], init: 0.02 * f },
    ...towerSpecs('text_model', t.num_hidden_layers, t.hidden_size, t.intermediate_size, f),
    ...norm('text_model.final_layer_norm', t.hidden_size),
    { name: 'vision_model.embeddings.class_embedding', shape: [v.hidden_size], init: v.hidden_size ** -0.5 * f },
    ...stemSpecs,
    { name: 'vision_model.embeddings.patch_embedding.weight', shape: [v.hidden_size, stem.at(-1) ?? 3, kernel, kernel], init: vRange },
    { name: 'vision_model.embeddings.position_embedding.weight', shape: [patches + 1, v.hidden_size], init: vRange },
    ...norm('vision_model.pre_layrnorm', v.hidden_size),
    ...towerSpecs('vision_model', v.num_hidden_layers, v.hidden_size, v.intermediate_size, f),
    ...norm('vision_model.post_layernorm', v.hidden_size),
    { name: 'text_projection.weight', shape: [proj, t.hidden_size], init: t.hidden_size ** -0.5 * f },
    { name: 'visual_projection.weight', shape: [proj, v.hidden_size], init: v.hidden_size ** -0.5 * f },
  ];
}

/** Random CLIPModel weights for a complete HF config, as a tensor source in HF key layout. */
export function randomClipWeights(cfg: Json, seed: number): TensorSource {
  const v = cfg.vision_config;
  if (v.image_size % v.patch_size !== 0) throw new Error(`vision_config: image_size ${v.image_size} is not a multiple of patch_size ${v.patch_size}`);
  const rng = new Rng(seed, STREAM.init);
  const tensors = new Map<string, RawTensor>();
  const put = (name: string, shape: number[], data: Float32Array) =>
    tensors.set(name, { dtype: 'float32', shape, bytes: new Uint8Array(data.buffer) });
  for (const s of initSpecs(cfg)) {
    const data = new Float32Array(s.shape.reduce((a, b) => a * b, 1));
    if (s.init === 'one') data.fill(1);
    else if (typeof s.init === 'number') for (let i = 0; i < data.length; i++) data[i] = rng.normal() * s.init;
    put(s.name, s.shape, data);
  }
  put('logit_scale', [], Float32Array.of(cfg.logit_scale_init_value ?? 2.6592));
  return {
    origin: 'random init',
    keys: () => [...tensors.keys()],
    has: (k) => tensors.has(k),
    get: (k) => {
      const t = tensors.get(k);
      if (!t) throw new Error(`random init: no tensor "${k}"`);
      return t;
    },
  };
}
