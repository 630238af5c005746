// The model a linear head belongs to, as recorded in head files and checked by `clip classify --head`.
import type { ClipModel } from '../runtime/clip-model.js';
import type { HeadModel } from '../tasks/head-file.js';

export function headModel(o: Record<string, any>, model: ClipModel): HeadModel {
  return { model: String(o.model), path: model.checkpoint.path, family: model.checkpoint.family, dtype: o.dtype };
}
