// ORT sessions for training graphs: one large graph whose activations, gradients and optimizer
// temporaries live only during a step, run with input shapes that change from batch to batch.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { toOnnxModel } from '../graph/onnx.js';
import type { Graph } from '../graph/graph.js';
import { ort } from '../runtime/session.js';

export async function createTrainSession(g: Graph, opts: { threads?: number; arena?: boolean; pattern?: boolean }): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(toOnnxModel(g), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    enableCpuMemArena: opts.arena ?? true,
    // Off by default: after the first run the pattern allocates one more block of the step's peak size
    // beside the arena (ViT-B/32, batch 32, with double-buffered parameters: 6.4 GB resident after the
    // first step, 9.6 GB after the second).
    enableMemPattern: opts.pattern ?? false,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  });
}

let gcFn: (() => void) | null | undefined;

/**
 * Free the outputs of a finished run now. onnxruntime-node hands every output back as a fresh copy (even
 * into a pre-allocated tensor), and V8 collects such external buffers late: a training step's model-sized
 * outputs would otherwise pile up for several steps. Uses the exposed gc when Node runs with --expose-gc,
 * else exposes it once; a no-op where neither works.
 */
export function releaseRunOutputs(): void {
  if (gcFn === undefined) {
    gcFn = (globalThis as { gc?: () => void }).gc ?? null;
    if (!gcFn) {
      try {
        setFlagsFromString('--expose-gc');
        gcFn = runInNewContext('gc') as () => void;
      } catch {
        gcFn = null;
      }
    }
  }
  gcFn?.();
}
