// Open Clip Art Library drawings (Debian's openclipart-svg, public domain): clip art in many hands, with a
// title and keywords in each file's RDF metadata. Optional training data of the clip-art kind Tux Paint's
// stamps are; several of those stamps were themselves drawn for this library, so near-duplicates of any
// stamp are found by their pixels (tuxDuplicates) and never used.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { cleanText } from './captions.js';

export interface ClipartEntry {
  /** Path under the svg dir without extension ("animals/mammals/bull_utrescu_"); unique. */
  id: string;
  /** Folder path ("animals / mammals"). */
  category: string;
  title: string;
  keywords: string[];
  source: string;
}

/** Files above this are skipped (12 in this version): bounded reads and renders for optional extra data. */
export const MAX_SVG_BYTES = 1 << 20;
/** Drawings kept per identical title. */
export const MAX_PER_TITLE = 5;

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const decode = (s: string) => cleanText(s.replace(/&(#x?[0-9a-f]+|\w+);/gi, (m, e: string) => {
  if (e[0] === '#') {
    const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
    return n > 0 && n < 0x110000 ? String.fromCodePoint(n) : ' ';
  }
  return ENTITIES[e.toLowerCase()] ?? m;
}));

/** Keywords that say where a drawing is filed or how it was made, not what it shows. */
const NOT_CONTENT = new Set(['unsorted', 'media', 'clip art', 'clipart', 'image', 'svg', 'png', 'public domain', 'openclipart', 'remix', 'externalsource', 'how i did it', 'hash']);

/** Title and keywords from the work's RDF (<cc:Work>: <dc:title>, <dc:subject><rdf:li>...). */
export function clipartMetadata(svg: string): { title?: string; keywords: string[] } {
  const work = /<cc:Work\b[\s\S]*?<\/cc:Work>/i.exec(svg)?.[0] ?? '';
  const titleRaw = /<dc:title>([^<]*)<\/dc:title>/i.exec(work)?.[1];
  const title = titleRaw === undefined ? undefined : usableTitle(decode(titleRaw));
  const subject = /<dc:subject>([\s\S]*?)<\/dc:subject>/i.exec(work)?.[1] ?? '';
  const seen = new Set(title ? [title.toLowerCase()] : []);
  const keywords: string[] = [];
  for (const m of subject.matchAll(/<rdf:li>([^<]*)<\/rdf:li>/gi)) {
    const k = decode(m[1]!).toLowerCase();
    if (!/\p{L}{2,}/u.test(k) || k.length > 40 || NOT_CONTENT.has(k) || seen.has(k)) continue;
    seen.add(k);
    keywords.push(k);
  }
  return { title, keywords };
}

/**
 * A title that names what is drawn, cleaned ("06_waninggibbous_openclipart" -> "06 waninggibbous"), or
 * undefined for the ones that name a theme, a collection or an author instead ("lemon svg theme", "part of
 * the flat icon collection (wed aug 25 2004)", "clipart by nicu buculei - fc23").
 */
export function usableTitle(raw: string): string | undefined {
  const t = cleanText(raw.replace(/_+/g, ' ').replace(/\bopen ?clip ?art\b/gi, ' '));
  if (!/\p{L}{2,}/u.test(t) || t.length > 60) return undefined;
  if (/\b(theme|collection|clip ?art|icons|icon set|svg|untitled|by [a-z]+ [a-z]+)\b/i.test(t) || /\d{4}/.test(t)) return undefined;
  return t;
}

/** [title, "a clip art of <title>", "<title>: <keywords>"] (the last only with keywords). */
export function clipartCaptions(e: Pick<ClipartEntry, 'title' | 'keywords'>): string[] {
  const t = e.title.toLowerCase();
  const kw = e.keywords.slice(0, 6);
  return kw.length ? [t, `a clip art of ${t}`, `${t}: ${kw.join(', ')}`] : [t, `a clip art of ${t}`];
}

/** Every drawing with a usable title under the package's svg folder, sorted by id; counts of what was skipped (untitled: no usable title, or an icon theme). */
export function openclipartEntries(pkgRoot: string): { entries: ClipartEntry[]; untitled: number; tooLarge: number; repeated: number } {
  const root = join(pkgRoot, 'usr', 'share', 'openclipart', 'svg');
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.isFile() && d.name.endsWith('.svg')) files.push(p);
    }
  };
  walk(root);
  let untitled = 0;
  let tooLarge = 0;
  let repeated = 0;
  const perTitle = new Map<string, number>();
  const entries: ClipartEntry[] = [];
  for (const source of files) {
    if (statSync(source).size > MAX_SVG_BYTES) { tooLarge++; continue; }
    const { title, keywords } = clipartMetadata(readFileSync(source, 'utf8'));
    const id = relative(root, source).replace(/\.svg$/, '');
    // Icon themes: every file is titled with its theme's name, so no caption would say what it shows.
    if (!title || id.startsWith('computer/icons/')) { untitled++; continue; }
    // Series under one title (88 "gramastar" stars, card decks): a few of each teach the word.
    const n = perTitle.get(title.toLowerCase()) ?? 0;
    perTitle.set(title.toLowerCase(), n + 1);
    if (n >= MAX_PER_TITLE) { repeated++; continue; }
    entries.push({ id, category: id.split('/').slice(0, -1).join(' / '), title, keywords, source });
  }
  return { entries, untitled, tooLarge, repeated };
}

const THUMB = 16;

/** A rendered image as a zero-mean, unit-length THUMB² grayscale vector (what near-duplicates share). */
export async function thumbnail(png: string): Promise<Float32Array> {
  const raw = await sharp(png).grayscale().resize(THUMB, THUMB, { fit: 'fill' }).raw().toBuffer();
  const v = Float32Array.from(raw);
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  let n = 0;
  for (let i = 0; i < v.length; i++) { v[i] -= mean; n += v[i]! * v[i]!; }
  const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}

/**
 * Indices of `candidates` whose thumbnail correlates at `threshold` or more with some stamp's (the same
 * drawing, whatever its size or file format). Blank thumbnails (all one colour) never match.
 */
export function tuxDuplicates(candidates: readonly Float32Array[], stamps: readonly Float32Array[], threshold: number): number[] {
  const out: number[] = [];
  candidates.forEach((c, i) => {
    for (const s of stamps) {
      let d = 0;
      for (let k = 0; k < c.length; k++) d += c[k]! * s[k]!;
      if (d >= threshold) { out.push(i); return; }
    }
  });
  return out;
}
