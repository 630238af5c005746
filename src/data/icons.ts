// Optional extra vocabulary: line/glyph icon sets whose names and tags are words CLIP should tie to
// simple shapes. Tabler (outline and filled) lists tags per icon; MDI lists synonyms as aliases and
// its tags are categories. Deprecated MDI icons are skipped.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cleanText } from './captions.js';

export interface IconEntry {
  style: 'tabler-outline' | 'tabler-filled' | 'mdi';
  name: string;
  category: string;
  keywords: string[];
  source: string;
}

const words = (name: string) => cleanText(name.replace(/[-_]+/g, ' '));

/** [name in words, "an icon of <name>", "<name>: <keywords>"] (the last only with keywords). */
export function iconCaptions(e: Pick<IconEntry, 'name' | 'keywords'>): string[] {
  const n = words(e.name);
  const kw = [...new Set(e.keywords.map(words).filter((k) => k && k !== n))].slice(0, 6);
  return kw.length ? [n, `an icon of ${n}`, `${n}: ${kw.join(', ')}`] : [n, `an icon of ${n}`];
}

interface TablerMeta {
  name: string;
  category?: string;
  tags?: (string | number)[];
  styles?: Record<string, unknown>;
}

export function tablerIcons(pkgRoot: string): IconEntry[] {
  const dir = join(pkgRoot, 'package');
  const meta = JSON.parse(readFileSync(join(dir, 'icons.json'), 'utf8')) as Record<string, TablerMeta>;
  const out: IconEntry[] = [];
  for (const m of Object.values(meta).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    for (const style of ['outline', 'filled'] as const) {
      const source = join(dir, 'icons', style, `${m.name}.svg`);
      if (!m.styles?.[style] || !existsSync(source)) continue;
      out.push({ style: `tabler-${style}`, name: m.name, category: m.category ?? '', keywords: (m.tags ?? []).map(String), source });
    }
  }
  return out;
}

interface MdiMeta {
  name: string;
  aliases?: string[];
  tags?: string[];
  deprecated?: boolean;
}

export function mdiIcons(pkgRoot: string): IconEntry[] {
  const dir = join(pkgRoot, 'package');
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as MdiMeta[];
  return meta.filter((m) => !m.deprecated && existsSync(join(dir, 'svg', `${m.name}.svg`)))
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((m) => ({ style: 'mdi' as const, name: m.name, category: (m.tags ?? []).join('; '), keywords: m.aliases ?? [], source: join(dir, 'svg', `${m.name}.svg`) }));
}
