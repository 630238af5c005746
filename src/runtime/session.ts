// ONNX Runtime sessions for graphs we built (in-memory ONNX) or ONNX files on disk.
import * as ort from 'onnxruntime-node';
import { toOnnxModel } from '../graph/onnx.js';
import type { Graph } from '../graph/graph.js';

export type Device = 'cpu' | 'webgpu';

export interface SessionOptions {
  device?: Device;
  /** Intra-op threads; default: ORT's choice (all cores). */
  threads?: number;
}

let webgpuWarned = false;
/** Set when a WebGPU session could not start: later sessions go straight to CPU instead of failing again. */
let webgpuFailed = false;

/** ORT's native errors start with its build's source path and the failing C++ check; keep what a user can act on. */
export function ortReason(message: string): string {
  const line = message.split('\n')[0]!;
  const check = /\bwas false\.\s*(.+)$/.exec(line);
  if (check) return check[1]!;
  return line.replace(/^\/\S+:\d+\s+/, '');
}

function providers(device: Device | undefined): string[] {
  if (device === 'webgpu' && !webgpuFailed) {
    const ok = ort.listSupportedBackends().some((b) => b.name === 'webgpu');
    if (ok) return ['webgpu', 'cpu'];
    if (!webgpuWarned) {
      process.stderr.write('clip: WebGPU is not available in this onnxruntime-node build; running on CPU\n');
      webgpuWarned = true;
    }
  }
  return ['cpu'];
}

export async function createSession(model: Graph | Uint8Array | string, opts: SessionOptions = {}): Promise<ort.InferenceSession> {
  const bytes = typeof model === 'string' || model instanceof Uint8Array ? model : toOnnxModel(model);
  const so: ort.InferenceSession.SessionOptions = {
    executionProviders: providers(opts.device),
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
  };
  try {
    return typeof bytes === 'string' ? await ort.InferenceSession.create(bytes, so) : await ort.InferenceSession.create(bytes, so);
  } catch (e) {
    if (opts.device === 'webgpu' && !webgpuFailed) {
      webgpuFailed = true;
      process.stderr.write(`clip: WebGPU is not usable here (${ortReason((e as Error).message)}); running on CPU\n`);
      return typeof bytes === 'string'
        ? ort.InferenceSession.create(bytes, { ...so, executionProviders: ['cpu'] })
        : ort.InferenceSession.create(bytes, { ...so, executionProviders: ['cpu'] });
    }
    throw e;
  }
}

export { ort };
