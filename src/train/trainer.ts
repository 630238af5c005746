// The training step in ORT: CLIP loss forward, backward (autodiff), and the AdamW update, either in the
// same graph or in a small update session over chunks (TrainMemory.update). Parameters, moments and the
// step count live here in JS between steps; all arithmetic runs in ORT.
import type * as ortTypes from 'onnxruntime-node';
import { appendGradients } from '../graph/autodiff.js';
import { Graph } from '../graph/graph.js';
import type { ClipConfig } from '../models/config.js';
import type { LossKind, LossTowers } from '../models/family.js';
import type { TowerWeights } from '../models/weights.js';
import { ort } from '../runtime/session.js';
import { createTrainSession, releaseRunOutputs } from './session.js';
import { AdamWChunkSession } from './adamw-session.js';
import { adamwScalars, appendAdamW, appendGradNorm, clipCoefficient, GRAD_NORM, loadAdamWState, newAdamWState, stateNames, type AdamWConfig, type AdamWState } from './adamw.js';
import { writeOptimizerState } from './checkpoint-io.js';
import { buildClipLossGraph, LOSS, type TrainTextInputs } from './clip-loss.js';
import { usesWeightDecay, type NamedTensor } from './params.js';

export interface TrainBatch {
  /** [n, 3, S, S] preprocessed pixels. */
  pixelValues: Float32Array;
  /** [n, T] token ids, padded. */
  inputIds: BigInt64Array;
  n: number;
  seqLen: number;
  /** Per row, the position pooled by the CLIP text tower (EOT). */
  eot: number[];
  /** [n, T] 1 = token, 0 = padding: what a BERT text tower reads (all ones when absent). */
  attentionMask?: BigInt64Array;
}

export interface TrainerOptions {
  adamw: AdamWConfig;
  /** A tower whose weights stay graph constants: no gradient, no optimizer state (projection included). */
  freeze?: 'vision' | 'text';
  /** Which parameters (checkpoint names) train besides the frozen tower's (default: all). */
  trainable?: (name: string) => boolean;
  /** Also return the gradients from step() (tests, debugging). */
  outputGrads?: boolean;
  threads?: number;
  /** The objective (default softmax; the run takes its family's, train/source.ts). */
  loss?: LossKind;
  /** The family's own towers, for tower kinds the shared loss code does not build (its descriptor's train.towers). */
  towers?: LossTowers;
  /** Upper clamp of logit_scale after each step (open_clip: ln 100). */
  logitScaleMax?: number;
  /** Memory/speed trade-offs, see TrainMemory. */
  memory?: TrainMemory;
}

export interface TrainMemory {
  /**
   * ORT's CPU arena (default true). The arena keeps what a step used and grows in doubling regions, so
   * it holds more than the step's live tensors. Without it ORT takes memory from malloc and returns it,
   * which lowers the peak only when glibc maps large blocks directly (MALLOC_MMAP_THRESHOLD_=262144 in
   * the environment; otherwise freed heap memory stays resident and the peak is higher), and costs page
   * faults on fresh memory every step. ViT-B/32, batch 32, recompute, 2 cores: 4.25 GiB and 8.9 s per step
   * with the arena, 3.58 GiB and 11.0 s without it (with that variable).
   */
  arena?: boolean;
  /**
   * ORT's memory pattern (default false). After the first run it plans one block per input shape beside
   * the arena, i.e. a second copy of the step's peak; and batch shapes vary (text padded to the longest).
   */
  pattern?: boolean;
  /**
   * Where the AdamW update runs (default 'chunked'). onnxruntime-node returns every output as a fresh
   * copy, also when it wrote a pre-allocated tensor: with the update in the graph ('graph') the new
   * parameters and both moments come back as three model-sized copies per step (1.7 GiB for ViT-B/32)
   * beside the buffers ORT wrote. 'chunked' fetches only the gradients (one copy) and runs the update in
   * a second, small ORT session over slices of at most ADAMW_CHUNK elements (adamw-session.ts), copying
   * each slice's results back into the parameters and moments.
   */
  update?: 'chunked' | 'graph';
  /**
   * With update 'graph': have ORT write the new parameters and moments over the old ones (default true,
   * used when readsPrecede proves it safe), so they exist once instead of twice.
   */
  inPlace?: boolean;
  /**
   * Activation recomputation per transformer block (default false): the backward recomputes each block's
   * forward from the block's input instead of keeping its activations alive from the forward pass.
   */
  recompute?: boolean;
}

/** Step outputs at least this large are freed right after the step (see releaseRunOutputs). */
const RELEASE_OUTPUT_BYTES = 64 * 2 ** 20;

/** A checkpoint tensor under its checkpoint name, in its stored layout. */
export interface Param {
  /** Current value. Trainable parameters' arrays are overwritten by later steps: copy to keep a snapshot. */
  data: Float32Array;
  dims: number[];
  trainable: boolean;
  decay: boolean;
}

export interface StepResult {
  /** Loss at the parameters before this step's update. */
  loss: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  grads?: Map<string, Float32Array>;
}

/** Position of EOT per row: the first eos token, or argmax(ids) for HF's legacy (eos id 2) configs. */
export function eotPositions(ids: BigInt64Array, n: number, T: number, eos: number, argmax = false): number[] {
  return Array.from({ length: n }, (_, i) => {
    const row = ids.subarray(i * T, (i + 1) * T);
    if (argmax) return row.reduce((best, x, k) => (x > row[best]! ? k : best), 0);
    const k = row.indexOf(BigInt(eos));
    return k < 0 ? T - 1 : k;
  });
}

/** Copy of the node list (nodes are mutated by autodiff) sharing the initializer data. */
function cloneGraph(g: Graph): Graph {
  const c = new Graph(g.name);
  for (const n of g.nodes) c.nodes.push({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } });
  for (const [k, t] of g.initializers) c.initializers.set(k, t);
  c.inputs.push(...g.inputs);
  c.outputs.push(...g.outputs);
  return c;
}

function promoteToInputs(g: Graph, names: string[]): void {
  for (const name of names) {
    const t = g.initializers.get(name)!;
    g.initializers.delete(name);
    g.input(name, 'float32', t.dims);
  }
}

/**
 * Whether ORT may write the updated parameters over the fed ones: every node before the AdamW part
 * (forward and backward) that reads a parameter must be an ancestor of the global grad norm, which every
 * write of a new parameter waits for (adamw.ts). Within AdamW, only a parameter's own elementwise chain
 * reads it, ending in the node that writes it; moments likewise.
 */
function readsPrecede(g: Graph, adamwStart: number, params: Set<string>, norm: string): boolean {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => o && producer.set(o, i)));
  const ancestors = new Set<number>();
  const stack = [producer.get(norm)].filter((i): i is number => i !== undefined);
  while (stack.length) {
    const i = stack.pop()!;
    if (ancestors.has(i)) continue;
    ancestors.add(i);
    for (const x of g.nodes[i]!.inputs) {
      const j = producer.get(x);
      if (j !== undefined && !ancestors.has(j)) stack.push(j);
    }
  }
  return g.nodes.every((n, i) => i >= adamwStart || ancestors.has(i) || !n.inputs.some((x) => params.has(x)));
}

export class ClipTrainer {
  private evalSession?: Promise<ortTypes.InferenceSession>;
  /**
   * With inPlace false, a second set of buffers: each step reads one set and ORT writes the updated
   * values straight into the other (pre-allocated outputs), then they swap. Either way there is no
   * per-step allocation, no copy and no GC churn.
   */
  private spare = new Map<string, { p: Float32Array; m: Float32Array; v: Float32Array }>();

  private constructor(
    readonly params: Map<string, Param>,
    public state: AdamWState,
    private readonly session: ortTypes.InferenceSession,
    /** The training graph (forward + backward + update), for introspection. */
    readonly graph: Graph,
    private readonly evalGraph: Graph,
    private readonly imageSize: number,
    private readonly textInputs: TrainTextInputs,
    private readonly opts: TrainerOptions,
    private readonly updated: string[],
    /** Trainable values the loss does not reach; they are not updated (as PyTorch skips grad=None). */
    readonly unreached: string[],
    /** ORT writes new params and moments over the old ones (see readsPrecede). */
    readonly inPlace: boolean,
    /** The update session of update 'chunked'. */
    private readonly updater?: AdamWChunkSession,
  ) {}

  static async create(cfg: ClipConfig, w: TowerWeights, opts: TrainerOptions): Promise<ClipTrainer> {
    const { graph: g, towers, textInputs } = buildClipLossGraph(cfg, w, { freeze: opts.freeze, loss: opts.loss, towers: opts.towers });
    const frozen = opts.freeze ? towers[opts.freeze] : new Set<string>();
    const names = [...g.weights].filter((n) => g.initializers.get(n)?.type === 'float32');
    const params = new Map<string, Param>();
    for (const name of names) {
      const t = g.initializers.get(name)!;
      params.set(name, {
        data: t.data as Float32Array, dims: [...t.dims],
        trainable: !frozen.has(name) && (opts.trainable?.(name) ?? true),
        decay: usesWeightDecay(name, t.dims.length),
      });
    }
    const trainable = names.filter((n) => params.get(n)!.trainable);
    promoteToInputs(g, trainable);
    const evalGraph = cloneGraph(g);

    const chunked = (opts.memory?.update ?? 'chunked') === 'chunked';
    const grads = appendGradients(g, LOSS, trainable, { outputs: chunked || (opts.outputGrads ?? false), recompute: opts.memory?.recompute });
    const updated = trainable.filter((n) => grads.grads.has(n));
    const clampMax = opts.logitScaleMax ?? Math.log(100);
    const adamwStart = g.nodes.length;
    if (chunked) {
      appendGradNorm(g, updated.map((n) => grads.grads.get(n)!));
    } else {
      appendAdamW(g, updated.map((name) => ({
        name, grad: grads.grads.get(name)!, decay: params.get(name)!.decay,
        clamp: name === 'logit_scale' ? [0, clampMax] as [number, number] : undefined,
      })), opts.adamw, (n) => params.get(n)!.dims);
    }

    const session = await createTrainSession(g, { threads: opts.threads, ...opts.memory });
    const state = newAdamWState(new Map(updated.map((n) => [n, params.get(n)!.dims])));
    const inPlace = !chunked && (opts.memory?.inPlace ?? true) && readsPrecede(g, adamwStart, new Set(updated), GRAD_NORM);
    const updater = chunked ? await AdamWChunkSession.create(opts.adamw, { arena: opts.memory?.arena }) : undefined;
    return new ClipTrainer(params, state, session, g, evalGraph, cfg.vision.imageSize, textInputs, opts, updated, grads.unreached, inPlace, updater);
  }

  private batchFeeds(b: TrainBatch): Record<string, ortTypes.Tensor> {
    const size = this.imageSize;
    if (b.pixelValues.length !== b.n * 3 * size * size) throw new Error(`pixel batch is not [${b.n}, 3, ${size}, ${size}]`);
    if (b.inputIds.length !== b.n * b.seqLen) throw new Error(`token batch is not [${b.n}, ${b.seqLen}]`);
    const feeds: Record<string, ortTypes.Tensor> = {
      pixel_values: new ort.Tensor('float32', b.pixelValues, [b.n, 3, size, size]),
      input_ids: new ort.Tensor('int64', b.inputIds, [b.n, b.seqLen]),
    };
    if (this.textInputs === 'pool_index') {
      if (b.eot.length !== b.n) throw new Error(`token batch has ${b.eot.length} EOT positions for ${b.n} rows`);
      feeds.pool_index = new ort.Tensor('int64', BigInt64Array.from(b.eot, (t, i) => BigInt(i * b.seqLen + t)), [b.n]);
    } else if (this.textInputs === 'attention_mask') {
      const mask = b.attentionMask ?? new BigInt64Array(b.n * b.seqLen).fill(1n);
      if (mask.length !== b.n * b.seqLen) throw new Error(`attention mask is not [${b.n}, ${b.seqLen}]`);
      feeds.attention_mask = new ort.Tensor('int64', mask, [b.n, b.seqLen]);
    }
    for (const [name, p] of this.params) if (p.trainable) feeds[name] = new ort.Tensor('float32', p.data, p.dims);
    return feeds;
  }

  /** One optimizer step at learning rate `lr`; returns the loss before the update. */
  async step(b: TrainBatch, lr: number): Promise<StepResult> {
    const js = this.updater !== undefined;
    const res = js ? await this.stepChunked(b, lr) : await this.stepInGraph(b, lr);
    // Model-sized outputs (gradients, or new parameters and moments) are freed now; small models' are
    // left to V8, a full collection per step would cost them more than it saves.
    const fetched = this.updated.reduce((a, n) => a + this.params.get(n)!.data.length, 0) * 4 * (js ? 1 : 3);
    if (fetched >= RELEASE_OUTPUT_BYTES) releaseRunOutputs();
    return res;
  }

  /** Forward + backward in ORT, the gradients out, then AdamW chunk by chunk in the update session. */
  private async stepChunked(b: TrainBatch, lr: number): Promise<StepResult> {
    const t = this.state.step + 1;
    const out = await this.session.run(this.batchFeeds(b), [LOSS, GRAD_NORM, ...this.updated.map((n) => `grad/${n}`)]);
    const gradNorm = (out[GRAD_NORM]!.data as Float32Array)[0]!;
    const clampMax = this.opts.logitScaleMax ?? Math.log(100);
    await this.updater!.update(this.updated.map((name) => {
      const p = this.params.get(name)!;
      return {
        p: p.data, m: this.state.m.get(name)!, v: this.state.v.get(name)!, grad: out[`grad/${name}`]!.data as Float32Array,
        decay: p.decay, clamp: name === 'logit_scale' ? [0, clampMax] as [number, number] : undefined,
      };
    }), lr, t, clipCoefficient(this.opts.adamw, gradNorm));
    this.state.step = t;
    const res: StepResult = { loss: (out[LOSS]!.data as Float32Array)[0]!, gradNorm };
    if (this.opts.outputGrads) res.grads = new Map(this.updated.map((n) => [n, out[`grad/${n}`]!.data as Float32Array]));
    return res;
  }

  /** Forward, backward and AdamW in one ORT run (update 'graph'). */
  private async stepInGraph(b: TrainBatch, lr: number): Promise<StepResult> {
    const feeds = this.batchFeeds(b);
    const t = this.state.step + 1;
    for (const [k, v] of Object.entries(adamwScalars(this.opts.adamw, lr, t))) feeds[k] = new ort.Tensor('float32', Float32Array.of(v), []);
    for (const name of this.updated) {
      const dims = this.params.get(name)!.dims;
      const s = stateNames(name);
      feeds[s.m] = new ort.Tensor('float32', this.state.m.get(name)!, dims);
      feeds[s.v] = new ort.Tensor('float32', this.state.v.get(name)!, dims);
    }
    const fetches: Record<string, ortTypes.Tensor | null> = { [LOSS]: null, [GRAD_NORM]: null };
    for (const name of this.updated) {
      const p = this.params.get(name)!;
      const s = stateNames(name);
      const target = this.inPlace ? { p: p.data, m: this.state.m.get(name)!, v: this.state.v.get(name)! } : this.spareFor(name);
      fetches[s.newParam] = new ort.Tensor('float32', target.p, p.dims);
      fetches[s.newM] = new ort.Tensor('float32', target.m, p.dims);
      fetches[s.newV] = new ort.Tensor('float32', target.v, p.dims);
      if (this.opts.outputGrads) fetches[`grad/${name}`] = null;
    }
    const out = await this.session.run(feeds, fetches);
    if (!this.inPlace) {
      for (const name of this.updated) {
        const p = this.params.get(name)!;
        const sp = this.spare.get(name)!;
        const old = { p: p.data, m: this.state.m.get(name)!, v: this.state.v.get(name)! };
        p.data = sp.p;
        this.state.m.set(name, sp.m);
        this.state.v.set(name, sp.v);
        this.spare.set(name, old);
      }
    }
    this.state.step = t;
    const res: StepResult = { loss: (out[LOSS]!.data as Float32Array)[0]!, gradNorm: (out[GRAD_NORM]!.data as Float32Array)[0]! };
    if (this.opts.outputGrads) res.grads = new Map(this.updated.map((n) => [n, out[`grad/${n}`]!.data as Float32Array]));
    return res;
  }

  private spareFor(name: string): { p: Float32Array; m: Float32Array; v: Float32Array } {
    let sp = this.spare.get(name);
    if (!sp) {
      const n = this.params.get(name)!.data.length;
      this.spare.set(name, (sp = { p: new Float32Array(n), m: new Float32Array(n), v: new Float32Array(n) }));
    }
    return sp;
  }

  /** Loss at the current parameters (forward only). */
  async evaluate(b: TrainBatch): Promise<number> {
    this.evalSession ??= createTrainSession(this.evalGraph, { threads: this.opts.threads, ...this.opts.memory });
    const out = await (await this.evalSession).run(this.batchFeeds(b), [LOSS]);
    return (out[LOSS]!.data as Float32Array)[0]!;
  }

  /** Every parameter, as the checkpoint names and stores it (the trainer's own layout). */
  checkpointTensors(): NamedTensor[] {
    return [...this.params].map(([name, p]) => ({ name, data: p.data, shape: p.dims }));
  }

  /** Optimizer state as safetensors (`exp_avg/<name>`, ...), names as in the checkpoint. */
  saveState(path: string): void {
    writeOptimizerState(path, this.state, this.params);
  }

  loadState(path: string): void {
    this.state = loadAdamWState(path, this.updated);
    for (const n of this.updated) {
      const want = this.params.get(n)!.data.length;
      if (this.state.m.get(n)!.length !== want || this.state.v.get(n)!.length !== want) throw new Error(`${path}: state for "${n}" has the wrong size`);
    }
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.updater?.release();
    if (this.evalSession) await (await this.evalSession).release();
  }
}
