// Which concepts each image package draws, and where its file is: key -> source image path.
import { existsSync, readFileSync } from 'node:fs';
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
