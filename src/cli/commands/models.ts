// `clip models`: the short names `--model` accepts and what the Hugging Face cache already holds.
import type { Command } from 'commander';
import { MODEL_ALIASES } from '../../hub/aliases.js';
import { BUNDLED_MODELS, DEFAULT_MODEL } from '../../hub/bundled.js';
import { existsSync } from 'node:fs';
import { hubConfig } from '../../hub/config.js';
import { formatBytes } from '../../hub/progress.js';
import { scanCache } from '../../hub/scan.js';
import { onnxCacheUsage } from '../../runtime/onnx-cache.js';
import { table } from '../table.js';

export function registerModels(program: Command): Command {
  return program
    .command('models')
    .description('list the bundled models, model aliases, the models in the Hugging Face cache (HF_HUB_CACHE / HF_HOME) and the size of the built-ONNX cache')
    .option('--cache-dir <dir>', 'hub cache directory (default: HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)')
    .option('--json', 'print JSON')
    .action((o: { cacheDir?: string; json?: boolean }) => {
      const { cacheDir } = hubConfig({ cacheDir: o.cacheDir });
      const cached = scanCache(cacheDir);
      const isCached = (repo: string) => cached.some((c) => c.repo === repo && c.revisions.length > 0);
      const aliases = Object.entries(MODEL_ALIASES).map(([alias, repo]) => ({ alias, repo, cached: isCached(repo) }));
      const bundled = Object.entries(BUNDLED_MODELS).map(([name, m]) => ({
        name, dir: m.dir, description: m.description, default: name === DEFAULT_MODEL, installed: existsSync(`${m.dir}/config.json`),
      }));
      const onnxCache = onnxCacheUsage();
      if (o.json) {
        process.stdout.write(JSON.stringify({ bundled, cacheDir, aliases, cached, onnxCache }) + '\n');
        return;
      }
      const out = [
        table(['bundled', 'default', 'installed', 'description'], bundled.map((b) => [b.name, b.default ? 'yes' : '', b.installed ? 'yes' : 'no', b.description])),
        '',
        table(['alias', 'repo', 'cached'], aliases.map((a) => [a.alias, a.repo, a.cached ? 'yes' : ''])),
      ];
      const rows = cached.flatMap((c) => {
        const partial = c.partial ? ` (+${formatBytes(c.partial)} partial)` : '';
        if (!c.revisions.length) return [[c.repo, '', '', '', `${formatBytes(c.size)}${partial}`]];
        return c.revisions.map((r) => [c.repo, r.refs.join(', ') || '-', r.commit.slice(0, 12), r.files, `${formatBytes(r.size)}${partial}`]);
      });
      out.push('', `cache: ${cacheDir}`);
      out.push(rows.length ? table(['repo', 'revision', 'commit', 'files', 'size'], rows) : '(empty)');
      out.push('', `built ONNX cache: ${onnxCache.dir} (${onnxCache.files} files, ${formatBytes(onnxCache.bytes)}; delete the folder to clear it)`);
      process.stdout.write(out.join('\n') + '\n');
    });
}
