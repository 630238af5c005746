// The shape of every tensor a tower reads, as its config implies it. Checked against the checkpoint's
// declared shapes when weights are mapped to a tower, before any graph is built or tensor read: a missing,
// mis-shaped or surplus tensor (a block the config does not count) is refused with its name, never run.
import { vitGrid, vitPatchKernel, type BertConfig, type ClipTextConfig, type ResNetConfig, type TextConfig, type TransformerConfig, type VisionConfig, type VitConfig } from './config.js';
import type { TowerWeights } from './weights.js';

/** One tensor a tower reads and the shape its config implies (tower modules of their own kinds write these too). */
export interface Expect {
  name: string;
  shape: number[];
  /** What the shape follows from, for the message. */
  why: string;
  optional?: boolean;
}

const fmt = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

function block(p: string, c: TransformerConfig, why: string): Expect[] {
  const D = c.width;
  const M = c.mlpWidth;
  const e = (name: string, shape: number[]): Expect => ({ name: `${p}.${name}`, shape, why });
  return [
    e('ln1.weight', [D]), e('ln1.bias', [D]), e('ln2.weight', [D]), e('ln2.bias', [D]),
    e('attn.qkv.weight', [3 * D, D]), e('attn.qkv.bias', [3 * D]),
    e('attn.out.weight', [D, D]), e('attn.out.bias', [D]),
    e('mlp.fc1.weight', [M, D]), e('mlp.fc1.bias', [M]),
    e('mlp.fc2.weight', [D, M]), e('mlp.fc2.bias', [D]),
  ];
}

export function blocks(p: string, c: TransformerConfig, why: string): Expect[] {
  return Array.from({ length: c.layers }, (_, i) => block(`${p}.${i}`, c, why)).flat();
}

export function vitShapes(v: VitConfig, projectionDim: number): Expect[] {
  const D = v.width;
  const grid = vitGrid(v);
  const why = 'vision config';
  const kernel = vitPatchKernel(v);
  const stem = (v.convStem ?? []).flatMap((c, i): Expect[] => [
    { name: `visual.stem.${i}.weight`, shape: [c, v.convStem![i - 1] ?? 3, 3, 3], why: 'vision conv_stem' },
    { name: `visual.stem.${i}.bias`, shape: [c], why: 'vision conv_stem' },
  ]);
  return [
    ...stem,
    { name: 'visual.patch.weight', shape: [D, kernel.channels, kernel.size, kernel.size], why: v.convStem ? 'vision width, conv_stem and patch_size' : why },
    { name: 'visual.cls', shape: [D], why },
    { name: 'visual.pos', shape: [grid * grid + 1, D], why: 'vision image_size / patch_size and width' },
    { name: 'visual.ln_pre.weight', shape: [D], why }, { name: 'visual.ln_pre.bias', shape: [D], why },
    ...blocks('visual.blocks', v, why),
    { name: 'visual.ln_post.weight', shape: [D], why }, { name: 'visual.ln_post.bias', shape: [D], why },
    { name: 'visual.proj', shape: [projectionDim, D], why: 'projection dim and vision width' },
  ];
}

export function clipTextShapes(t: ClipTextConfig, projectionDim: number): Expect[] {
  const D = t.width;
  const why = 'text config';
  return [
    { name: 'text.tok', shape: [t.vocabSize, D], why: 'text vocab size and width' },
    { name: 'text.pos', shape: [t.contextLength, D], why: 'text context length and width' },
    ...blocks('text.blocks', t, why),
    { name: 'text.ln_final.weight', shape: [D], why }, { name: 'text.ln_final.bias', shape: [D], why },
    { name: 'text.proj', shape: [projectionDim, D], why: 'projection dim and text width' },
  ];
}

/** BERT towers; `out` is the projection dim (Chinese-CLIP) or the classifier's label count (Taiyi). */
export function bertShapes(t: BertConfig, out: number): Expect[] {
  const D = t.width;
  const why = 'BERT config';
  const hidden = Math.floor((D + out) / 2);
  const head: Expect[] = t.pooling !== 'classifier'
    ? (t.projection === 'mlp'
      ? [
        { name: 'text.proj.fc1', shape: [hidden, D], why: 'text width and (width + projection dim) / 2' },
        { name: 'text.proj.fc2', shape: [out, hidden], why: 'projection dim and (width + projection dim) / 2' },
      ]
      : [{ name: 'text.proj', shape: [out, D], why: 'projection dim and text width' }])
    : [
      { name: 'bert.pooler.weight', shape: [D, D], why }, { name: 'bert.pooler.bias', shape: [D], why },
      { name: 'classifier.weight', shape: [out, D], why: 'num_labels and width' }, { name: 'classifier.bias', shape: [out], why: 'num_labels' },
    ];
  return [
    { name: 'bert.embeddings.word', shape: [t.vocabSize, D], why: 'vocab_size and hidden_size' },
    { name: 'bert.embeddings.pos', shape: [t.contextLength, D], why: 'max_position_embeddings and hidden_size' },
    { name: 'bert.embeddings.type', shape: [t.typeVocabSize, D], why: 'type_vocab_size and hidden_size' },
    { name: 'bert.embeddings.ln.weight', shape: [D], why }, { name: 'bert.embeddings.ln.bias', shape: [D], why },
    ...blocks('bert.blocks', t, why),
    ...head,
  ];
}

const BN = ['weight', 'bias', 'running_mean', 'running_var'];

function convBn(conv: string, bn: string, out: number, inp: number, k: number, why: string): Expect[] {
  return [
    { name: `${conv}.weight`, shape: [out, inp, k, k], why },
    ...BN.map((p) => ({ name: `${bn}.${p}`, shape: [out], why })),
  ];
}

/** OpenAI's ModifiedResNet, following modified-resnet.ts's construction exactly. */
export function resnetShapes(v: ResNetConfig): Expect[] {
  const W = v.width;
  const why = 'vision width and layers';
  const out: Expect[] = [
    ...convBn('visual.conv1', 'visual.bn1', W / 2, 3, 3, why),
    ...convBn('visual.conv2', 'visual.bn2', W / 2, W / 2, 3, why),
    ...convBn('visual.conv3', 'visual.bn3', W, W / 2, 3, why),
  ];
  let inplanes = W;
  v.layers.forEach((n, s) => {
    const planes = W * 2 ** s;
    for (let b = 0; b < n; b++) {
      const p = `visual.layer${s + 1}.${b}`;
      out.push(
        ...convBn(`${p}.conv1`, `${p}.bn1`, planes, inplanes, 1, why),
        ...convBn(`${p}.conv2`, `${p}.bn2`, planes, planes, 3, why),
        ...convBn(`${p}.conv3`, `${p}.bn3`, planes * 4, planes, 1, why),
      );
      if ((b === 0 && s > 0) || inplanes !== planes * 4) out.push(...convBn(`${p}.downsample.0`, `${p}.downsample.1`, planes * 4, inplanes, 1, why));
      inplanes = planes * 4;
    }
  });
  const C = W * 32;
  const grid = v.imageSize / 32;
  const a = 'visual.attnpool';
  out.push(
    { name: `${a}.positional_embedding`, shape: [grid * grid + 1, C], why: 'vision image_size and width' },
    ...['q_proj', 'k_proj', 'v_proj'].flatMap((x) => [
      { name: `${a}.${x}.weight`, shape: [C, C], why }, { name: `${a}.${x}.bias`, shape: [C], why },
    ]),
    { name: `${a}.c_proj.weight`, shape: [v.outputDim, C], why: 'embed_dim and vision width' },
    { name: `${a}.c_proj.bias`, shape: [v.outputDim], why: 'embed_dim' },
  );
  return out;
}

/** logit_scale is optional (a default applies) but, when present, one number. */
export const LOGIT_SCALE: Expect = { name: 'logit_scale', shape: [], why: 'a scalar', optional: true };

/** A tensor that must be absent: the config does not count it (`what` says why, for the message). */
export interface Surplus {
  name: string;
  what: string;
}

/**
 * Canonical names one past the configured block count: present in the checkpoint, they mean the config
 * counts fewer layers than the weights hold, and the tower would silently drop the rest.
 */
export function surplus(tower: 'vision' | 'text' | 'bert', layers: number | number[]): Surplus[] {
  if (Array.isArray(layers)) {
    return [
      ...layers.map((n, s) => ({ name: `visual.layer${s + 1}.${n}.conv1.weight`, what: `stage ${s + 1} has ${n} blocks in the config` })),
      { name: 'visual.layer5.0.conv1.weight', what: 'the config has 4 stages' },
    ];
  }
  const p = tower === 'vision' ? 'visual.blocks' : tower === 'text' ? 'text.blocks' : 'bert.blocks';
  return [{ name: `${p}.${layers}.ln1.weight`, what: `the config has ${layers} ${tower} layers` }];
}

/** Biases a CLIP tower does not have: a checkpoint that holds one was built differently, and would be misread. */
const UNUSED_BIASES = [
  { name: 'visual.patch.bias', what: 'the patch embedding, which has no bias in CLIP' },
  { name: 'visual.proj.bias', what: 'the image projection, which has no bias in CLIP' },
  { name: 'text.proj.bias', what: 'the text projection, which has no bias in CLIP' },
];

/** open_clip's 'mlp' projection is Linear(bias=False)-GELU-Linear(bias=False). */
const MLP_PROJ_BIASES = [
  { name: 'text.proj.fc1.bias', what: 'the text projection MLP, which has no biases' },
  { name: 'text.proj.fc2.bias', what: 'the text projection MLP, which has no biases' },
];

/** The tower configs whose weights to check: any of image / text (CLIP or BERT). */
export interface TowerShapes {
  vision?: VisionConfig;
  text?: TextConfig;
  projectionDim: number;
  /** Taiyi: the classifier's output width. */
  numLabels?: number;
}

/** The shape rules of the tower kinds this file knows; a tower of another kind brings its own (checkShapes). */
export function checkWeightShapes(w: TowerWeights, towers: TowerShapes): void {
  const expect: Expect[] = [LOGIT_SCALE];
  const extra: Surplus[] = [];
  const v = towers.vision;
  if (v) {
    if (v.kind !== 'vit' && v.kind !== 'resnet') throw new Error(`${w.origin}: no shape rules here for a ${v.kind} image tower (its module checks them)`);
    expect.push(...(v.kind === 'vit' ? vitShapes(v, towers.projectionDim) : resnetShapes(v)));
    extra.push(...surplus('vision', v.layers));
    if (v.kind === 'vit') {
      extra.push(...UNUSED_BIASES.filter((b) => b.name.startsWith('visual.')));
      const stem = v.convStem?.length ?? 0;
      extra.push({ name: `visual.stem.${stem}.weight`, what: stem ? `the config's conv_stem has ${stem} layers` : 'the config has no conv_stem' });
    }
  }
  const t = towers.text;
  if (t) {
    if (t.kind !== 'clip-text' && t.kind !== 'bert') throw new Error(`${w.origin}: no shape rules here for a ${t.kind} text tower (its module checks them)`);
    expect.push(...(t.kind === 'clip-text' ? clipTextShapes(t, towers.projectionDim) : bertShapes(t, towers.numLabels ?? towers.projectionDim)));
    extra.push(...surplus(t.kind === 'bert' ? 'bert' : 'text', t.layers));
    if (t.kind === 'clip-text' || t.pooling !== 'classifier') extra.push(...UNUSED_BIASES.filter((b) => b.name.startsWith('text.')));
    if (t.kind === 'bert' && t.projection === 'mlp') extra.push(...MLP_PROJ_BIASES);
  }
  checkShapes(w, expect, extra);
}

/**
 * Every expected tensor present with its shape (unless optional) and no surplus one; one error listing the
 * first problems. Shared by the towers above and by tower modules that bring their own lists.
 */
export function checkShapes(w: TowerWeights, expect: readonly Expect[], extra: readonly Surplus[] = []): void {
  const problems: string[] = [];
  for (const e of expect) {
    const got = w.shape(e.name);
    if (!got) {
      if (!e.optional) problems.push(w.missing(e.name));
      continue;
    }
    // A scalar may be stored as [] or [1].
    const same = e.shape.length === 0 ? got.length <= 1 && got.every((d) => d === 1) : fmt(got) === fmt(e.shape);
    if (!same) problems.push(`tensor ${w.keys(e.name).map((k) => `"${k}"`).join(', ')} has shape ${fmt(got)}, expected ${fmt(e.shape)} (${e.why})`);
  }
  for (const x of extra) {
    if (!w.has(x.name)) continue;
    const tensor = `tensor ${w.keys(x.name).map((k) => `"${k}"`).join(', ')}`;
    problems.push(x.name.endsWith('.bias') ? `${tensor} is a bias of ${x.what}: it would be ignored` : `${tensor} is one block more than ${x.what}: the config does not match the weights`);
  }
  if (problems.length) {
    const more = problems.length > 5 ? `\n  ... and ${problems.length - 5} more` : '';
    throw new Error(`${w.origin}: the weights do not match the config:\n  ${problems.slice(0, 5).join('\n  ')}${more}`);
  }
}
