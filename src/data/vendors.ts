// Which concepts each image package draws, and where its file is: key -> source image path.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { conceptKey } from './keys.js';

export interface DatasourceEntry {
  unified: string;
  image: string;
  [hasImg: `has_img_${string}`]: boolean | undefined;
}

/** emoji-datasource-<vendor>: entries the package says it has art for, whose 64 px PNG is present. */
export function datasourceImages(entries: readonly DatasourceEntry[], vendor: string, pngDir: string, exists: (p: string) => boolean = existsSync): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    if (!e[`has_img_${vendor}`]) continue;
    const p = join(pngDir, e.image);
    if (exists(p)) out.set(conceptKey(e.unified), p);
  }
  return out;
}

export function loadDatasource(pkgRoot: string, vendor: 'google' | 'twitter'): Map<string, string> {
  const entries = JSON.parse(readFileSync(join(pkgRoot, 'package', 'emoji.json'), 'utf8')) as DatasourceEntry[];
  return datasourceImages(entries, vendor, join(pkgRoot, 'package', 'img', vendor, '64'));
}

export interface OpenmojiEntry {
  hexcode: string;
  annotation?: string;
  group?: string;
}

/** OpenMoji colour SVGs are named by their (FE0F-keeping, upper-case) hexcode. */
export function openmojiImages(entries: readonly OpenmojiEntry[], svgDir: string, exists: (p: string) => boolean = existsSync): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of entries) {
    const p = join(svgDir, `${e.hexcode}.svg`);
    if (exists(p)) out.set(conceptKey(e.hexcode), p);
  }
  return out;
}

export function loadOpenmoji(pkgRoot: string): Map<string, string> {
  const entries = JSON.parse(readFileSync(join(pkgRoot, 'package', 'data', 'openmoji.json'), 'utf8')) as OpenmojiEntry[];
  return openmojiImages(entries, join(pkgRoot, 'package', 'color', 'svg'));
}

/**
 * EmojiOne 2 names each file by its lower-case codepoints joined with '-' (FE0F mostly dropped, as in
 * concept keys); files whose name is not a codepoint sequence are skipped.
 */
export function emojioneImages(files: readonly string[], dir: string, ext: '.png' | '.svg'): Map<string, string> {
  const out = new Map<string, string>();
  for (const f of files) {
    if (!f.endsWith(ext)) continue;
    const stem = f.slice(0, -ext.length);
    if (!/^[0-9a-f]{1,6}(-[0-9a-f]{1,6})*$/i.test(stem)) continue;
    const key = conceptKey(stem);
    // Two files for one concept (with and without FE0F): keep the first in sorted order.
    if (!out.has(key)) out.set(key, join(dir, f));
  }
  return out;
}

export function loadEmojione(pkgRoot: string): { color: Map<string, string>; bw: Map<string, string> } {
  const dir = (sub: string) => join(pkgRoot, 'package', 'assets', sub);
  const list = (sub: string) => readdirSync(dir(sub)).sort();
  return { color: emojioneImages(list('png'), dir('png'), '.png'), bw: emojioneImages(list('svg_bw'), dir('svg_bw'), '.svg') };
}
