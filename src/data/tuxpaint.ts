// Tux Paint stamps: each stamp is an image (PNG and/or SVG) beside a `.txt` whose first line is the
// English description and whose other lines are translations ("fr.utf8=Une perruche."). Stamps
// without a description (e.g. the `_mirror` variants) or without an image are skipped.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { cleanText } from './captions.js';

const LOCALE_LINE = /^[a-z]{2,3}(_[A-Z]{2})?(@[a-z]+)?\.utf-?8=/i;
const ENGLISH_LOCALES = ['en_US', 'en_GB', 'en_AU', 'en_CA'];

/** The English description in a stamp's `.txt`, or undefined when it has none. */
export function englishDescription(text: string): string | undefined {
  const lines = text.replace(/^\ufeff/, '').split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const first = lines[0];
  if (first && !LOCALE_LINE.test(first)) return cleanText(first);
  // No untagged line: take an explicit English translation.
  for (const loc of ENGLISH_LOCALES) {
    const l = lines.find((x) => x.toLowerCase().startsWith(`${loc.toLowerCase()}.utf8=`));
    if (l) return cleanText(l.slice(l.indexOf('=') + 1));
  }
  return undefined;
}

export interface Stamp {
  /** Path under the stamps dir without extension ("animals/birds/blackbird"); unique. */
  id: string;
  category: string;
  caption: string;
  source: string;
}

function walk(dir: string, out: string[]): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.name.endsWith('.txt')) out.push(p);
  }
  return out;
}

/** Stamps with an English description and an image; PNG preferred (no rasterizer variance), else SVG. */
export function listStamps(stampsDir: string): { stamps: Stamp[]; noImage: string[]; noEnglish: string[] } {
  const stamps: Stamp[] = [];
  const noImage: string[] = [];
  const noEnglish: string[] = [];
  for (const txt of walk(stampsDir, []).sort()) {
    const stem = txt.slice(0, -'.txt'.length);
    const id = relative(stampsDir, stem);
    const source = [`${stem}.png`, `${stem}.svg`].find((p) => existsSync(p));
    if (!source) { noImage.push(id); continue; }
    const caption = englishDescription(readFileSync(txt, 'utf8'));
    if (!caption) { noEnglish.push(id); continue; }
    stamps.push({ id, category: id.includes('/') ? id.slice(0, id.lastIndexOf('/')) : '', caption, source });
  }
  return { stamps, noImage, noEnglish };
}

export const stampsDir = (pkgRoot: string) => join(pkgRoot, 'usr', 'share', 'tuxpaint', 'stamps');
