// Models that ship inside the package (no download): the default model `--model` falls back to.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Package root: this file is dist/src/hub/bundled.js. */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export const BUNDLED_MODELS: Readonly<Record<string, { dir: string; description: string }>> = {
  'emoji-clip': {
    dir: `${PACKAGE_ROOT}models/emoji-clip`,
    description: 'small CLIP trained from scratch on emoji (this package; see README "Default model")',
  },
};

/** What `--model` means when it is not given. */
export const DEFAULT_MODEL = 'emoji-clip';

/** The directory of a bundled model, or undefined when `name` is not one. Throws if it is one but missing. */
export function bundledModelDir(name: string): string | undefined {
  const m = Object.hasOwn(BUNDLED_MODELS, name) ? BUNDLED_MODELS[name] : undefined;
  if (!m) return undefined;
  if (!existsSync(`${m.dir}/config.json`)) {
    throw new Error(`the bundled model "${name}" is missing from this installation (${m.dir}); pass --model PATH or a hub id`);
  }
  return m.dir;
}
