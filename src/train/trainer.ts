// One ORT session per training step: CLIP loss forward, backward (autodiff), and the AdamW update.
// Parameters, moments and step count live here in JS between steps; every step feeds them in and takes
// the updated ones out (no per-element work in JS).
import type * as ortTypes from 'onnxruntime-node';
import { appendGradients } from '../graph/autodiff.js';
import { Graph } from '../graph/graph.js';
import type { ClipConfig } from '../models/config.js';
import type { TowerWeights } from '../models/weights.js';
import { createSession, ort } from '../runtime/session.js';
import { adamwScalars, appendAdamW, GRAD_NORM, loadAdamWState, newAdamWState, saveAdamWState, stateNames, type AdamWConfig, type AdamWState } from './adamw.js';
import { buildClipLossGraph, graphParams, LOSS } from './clip-loss.js';
import { canonicalUsesWeightDecay, fromCheckpointLayout, hfKeys, toCheckpointLayout, type KeyMapper, type NamedTensor } from './params.js';

export interface TrainBatch {
  /** [n, 3, S, S] preprocessed pixels. */
  pixelValues: Float32Array;
  /** [n, T] token ids, padded. */
  inputIds: BigInt64Array;
  n: number;
  seqLen: number;
  /** Per row, the position pooled by the text tower (EOT). */
  eot: number[];
}

export interface TrainerOptions {
  adamw: AdamWConfig;
  /** Which canonical parameters train (default: all). The others stay graph constants. */
  trainable?: (canonical: string) => boolean;
  /** Also return the gradients from step() (tests, debugging). */
  outputGrads?: boolean;
  threads?: number;
  keys?: KeyMapper;
  /** Upper clamp of logit_scale after each step (open_clip: ln 100). */
  logitScaleMax?: number;
}

export interface Param {
  /** Current value. Trainable parameters' arrays are reused two steps later: copy to keep a snapshot. */
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

export class ClipTrainer {
  private evalSession?: Promise<ortTypes.InferenceSession>;
  /**
   * Second set of buffers for params and moments: each step reads one set and ORT writes the updated
   * values straight into the other (pre-allocated outputs), then they swap. No per-step allocation of
   * 3x the model size, no copies, no GC churn.
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
    private readonly opts: TrainerOptions,
    private readonly updated: string[],
    /** Trainable values the loss does not reach; they are not updated (as PyTorch skips grad=None). */
    readonly unreached: string[],
  ) {}

  static async create(cfg: ClipConfig, w: TowerWeights, opts: TrainerOptions): Promise<ClipTrainer> {
    const keys = opts.keys ?? hfKeys;
    const g = buildClipLossGraph(cfg, w);
    const names = graphParams(g, (n) => keys(n) !== undefined);
    const params = new Map<string, Param>();
    for (const name of names) {
      const t = g.initializers.get(name)!;
      params.set(name, {
        data: t.data as Float32Array, dims: [...t.dims],
        trainable: opts.trainable ? opts.trainable(name) : true,
        decay: canonicalUsesWeightDecay(name, t.dims, keys),
      });
    }
    const trainable = names.filter((n) => params.get(n)!.trainable);
    promoteToInputs(g, trainable);
    const evalGraph = cloneGraph(g);

    const grads = appendGradients(g, LOSS, trainable, { outputs: opts.outputGrads ?? false });
    const updated = trainable.filter((n) => grads.grads.has(n));
    const clampMax = opts.logitScaleMax ?? Math.log(100);
    appendAdamW(g, updated.map((name) => ({
      name, grad: grads.grads.get(name)!, decay: params.get(name)!.decay,
      clamp: name === 'logit_scale' ? [0, clampMax] as [number, number] : undefined,
    })), opts.adamw, (n) => params.get(n)!.dims);

    const session = await createSession(g, { threads: opts.threads });
    const state = newAdamWState(new Map(updated.map((n) => [n, params.get(n)!.dims])));
    return new ClipTrainer(params, state, session, g, evalGraph, cfg.vision.imageSize, opts, updated, grads.unreached);
  }

  private batchFeeds(b: TrainBatch): Record<string, ortTypes.Tensor> {
    const size = this.imageSize;
    if (b.pixelValues.length !== b.n * 3 * size * size) throw new Error(`pixel batch is not [${b.n}, 3, ${size}, ${size}]`);
    if (b.inputIds.length !== b.n * b.seqLen || b.eot.length !== b.n) throw new Error(`token batch is not [${b.n}, ${b.seqLen}] with ${b.n} EOT positions`);
    const feeds: Record<string, ortTypes.Tensor> = {
      pixel_values: new ort.Tensor('float32', b.pixelValues, [b.n, 3, size, size]),
      input_ids: new ort.Tensor('int64', b.inputIds, [b.n, b.seqLen]),
      pool_index: new ort.Tensor('int64', BigInt64Array.from(b.eot, (t, i) => BigInt(i * b.seqLen + t)), [b.n]),
    };
    for (const [name, p] of this.params) if (p.trainable) feeds[name] = new ort.Tensor('float32', p.data, p.dims);
    return feeds;
  }

  /** One optimizer step at learning rate `lr`; returns the loss before the update. */
  async step(b: TrainBatch, lr: number): Promise<StepResult> {
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
      let sp = this.spare.get(name);
      if (!sp) this.spare.set(name, (sp = { p: new Float32Array(p.data.length), m: new Float32Array(p.data.length), v: new Float32Array(p.data.length) }));
      const s = stateNames(name);
      fetches[s.newParam] = new ort.Tensor('float32', sp.p, p.dims);
      fetches[s.newM] = new ort.Tensor('float32', sp.m, p.dims);
      fetches[s.newV] = new ort.Tensor('float32', sp.v, p.dims);
      if (this.opts.outputGrads) fetches[`grad/${name}`] = null;
    }
    const out = await this.session.run(feeds, fetches);
    for (const name of this.updated) {
      const p = this.params.get(name)!;
      const sp = this.spare.get(name)!;
      const [oldP, oldM, oldV] = [p.data, this.state.m.get(name)!, this.state.v.get(name)!];
      p.data = sp.p;
      this.state.m.set(name, sp.m);
      this.state.v.set(name, sp.v);
      this.spare.set(name, { p: oldP, m: oldM, v: oldV });
    }
    this.state.step = t;
    const res: StepResult = { loss: (out[LOSS]!.data as Float32Array)[0]!, gradNorm: (out[GRAD_NORM]!.data as Float32Array)[0]! };
    if (this.opts.outputGrads) res.grads = new Map(this.updated.map((n) => [n, out[`grad/${n}`]!.data as Float32Array]));
    return res;
  }

  /** Loss at the current parameters (forward only). */
  async evaluate(b: TrainBatch): Promise<number> {
    this.evalSession ??= createSession(this.evalGraph, { threads: this.opts.threads });
    const out = await (await this.evalSession).run(this.batchFeeds(b), [LOSS]);
    return (out[LOSS]!.data as Float32Array)[0]!;
  }

  /** Every parameter in checkpoint (HF) layout. */
  checkpointTensors(): NamedTensor[] {
    const keys = this.opts.keys ?? hfKeys;
    return [...this.params].flatMap(([name, p]) => toCheckpointLayout(name, { data: p.data, shape: p.dims }, keys));
  }

  /** Optimizer state as safetensors, in checkpoint layout (`exp_avg/<hf name>`, ...). */
  saveState(path: string): void {
    const keys = this.opts.keys ?? hfKeys;
    const shapes = new Map(this.updated.map((n) => [n, this.params.get(n)!.dims]));
    saveAdamWState(path, this.state, shapes, (name, data, shape) => toCheckpointLayout(name, { data, shape }, keys));
  }

  loadState(path: string): void {
    const keys = this.opts.keys ?? hfKeys;
    this.state = loadAdamWState(path, this.updated, (name, get) => fromCheckpointLayout(name, get, keys));
    for (const n of this.updated) {
      const want = this.params.get(n)!.data.length;
      if (this.state.m.get(n)!.length !== want) throw new Error(`${path}: state for "${n}" has the wrong size`);
    }
  }

  async release(): Promise<void> {
    await this.session.release();
    if (this.evalSession) await (await this.evalSession).release();
  }
}
