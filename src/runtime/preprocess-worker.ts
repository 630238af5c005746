// A decode + preprocess worker of the pool in preprocess-pool.ts: the same preprocessor as the main thread,
// one image at a time, pixels handed back by transfer (no copy).
import { parentPort, workerData } from 'node:worker_threads';
import type { PreprocessSpec } from '../models/checkpoint.js';
import { isDecoderFailure } from '../image/decode.js';
import { makeImagePreprocessor, type PreprocessorOptions } from './preprocess.js';

interface Job { id: number; input: string | Uint8Array; name: string }

const { spec, opts } = workerData as { spec: PreprocessSpec; opts: PreprocessorOptions };
// libvips failures come back unretried (see DecodeOptions.noRetry): the pool re-runs them on its own terms.
const preprocess = makeImagePreprocessor(spec, { ...opts, noRetry: true });

parentPort!.on('message', (job: Job) => {
  preprocess(job.input, job.name).then(
    (pixels) => parentPort!.postMessage({ id: job.id, pixels }, [pixels.buffer as ArrayBuffer]),
    (e: unknown) => parentPort!.postMessage({ id: job.id, error: (e as Error)?.message ?? String(e), decoderFailure: isDecoderFailure(e) }),
  );
});
