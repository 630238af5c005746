// The concept table: one row per emoji concept (emojibase's fully-qualified base emojis, skin-tone
// variants and the "component" group left out), with group/subgroup names, tags, emojilib keywords,
// shortcodes and captions, keyed by the normalized codepoint key (keys.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCaptions, cleanText, keywords } from './captions.js';
import { conceptKey, keyFromEmoji } from './keys.js';

export interface EmojibaseEntry {
  label: string;
  hexcode: string;
  emoji?: string;
  tags?: string[];
  group?: number;
  subgroup?: number;
  order?: number;
  skins?: EmojibaseEntry[];
  /** Skin tone of a variant: 1 (light) .. 5 (dark), one per person in multi-person emojis. */
  tone?: number | number[];
}

export interface EmojibaseGroups {
  groups: Record<string, string>;
  subgroups: Record<string, string>;
}

export interface EmojibaseMessages {
  groups: { key: string; message: string }[];
  subgroups: { key: string; message: string }[];
}

/** shortcode file: hexcode -> one shortcode or several. */
export type ShortcodeFile = Record<string, string | string[]>;

export interface Concept {
  key: string;
  emoji: string;
  label: string;
  /** emojibase's order, the Unicode recommended sort; manifests and class lists follow it. */
  order: number;
  group: string;
  groupName: string;
  subgroup: string;
  subgroupName: string;
  tags: string[];
  keywords: string[];
  shortcodes: string[];
  captions: string[];
}

export interface ConceptTable {
  concepts: Concept[];
  byKey: Map<string, Concept>;
  /** Skin-tone variant key -> its label, base key and tone(s) 1-5 (joins see them; manifests do not). */
  variants: Map<string, { label: string; base: string; tone?: number | number[] }>;
  emojilibMatched: number;
  emojilibTotal: number;
}

/** emojibase's "component" group holds skin tones and hair styles: parts of emojis, not concepts. */
const EXCLUDED_GROUPS = new Set(['component']);

export function buildConcepts(
  data: readonly EmojibaseEntry[], groups: EmojibaseGroups, messages: EmojibaseMessages,
  emojilib: Record<string, string[]>, shortcodeFiles: readonly ShortcodeFile[] = [],
): ConceptTable {
  const msg = (list: { key: string; message: string }[], key: string) => list.find((m) => m.key === key)?.message ?? key.replace(/-/g, ' ');
  const lib = new Map<string, string[]>();
  for (const [ch, words] of Object.entries(emojilib)) lib.set(keyFromEmoji(ch), words);
  const codes = new Map<string, Set<string>>();
  for (const file of shortcodeFiles) {
    for (const [hex, v] of Object.entries(file)) {
      const k = conceptKey(hex);
      const set = codes.get(k) ?? codes.set(k, new Set()).get(k)!;
      for (const c of Array.isArray(v) ? v : [v]) set.add(c);
    }
  }
  const concepts: Concept[] = [];
  const variants: ConceptTable['variants'] = new Map();
  let emojilibMatched = 0;
  for (const e of data) {
    // Regional indicator letters have no group: they are only parts of flags.
    if (e.group === undefined || e.subgroup === undefined) continue;
    const group = groups.groups[String(e.group)];
    const subgroup = groups.subgroups[String(e.subgroup)];
    if (!group || !subgroup) throw new Error(`emojibase ${e.hexcode}: unknown group ${e.group}/${e.subgroup}`);
    if (EXCLUDED_GROUPS.has(group)) continue;
    const key = conceptKey(e.hexcode);
    for (const s of e.skins ?? []) variants.set(conceptKey(s.hexcode), { label: cleanText(s.label), base: key, tone: s.tone });
    const libWords = lib.get(key);
    if (libWords) emojilibMatched++;
    const label = cleanText(e.label);
    const c = {
      key, emoji: e.emoji ?? '', label, order: e.order ?? concepts.length,
      group, groupName: msg(messages.groups, group), subgroup, subgroupName: msg(messages.subgroups, subgroup),
      tags: e.tags ?? [], keywords: keywords(label, libWords, e.tags), shortcodes: [...(codes.get(key) ?? [])].sort(),
    };
    concepts.push({ ...c, captions: buildCaptions(c) });
  }
  concepts.sort((a, b) => a.order - b.order);
  const byKey = new Map(concepts.map((c) => [c.key, c]));
  if (byKey.size !== concepts.length) throw new Error('emojibase: two concepts share a key');
  return { concepts, byKey, variants, emojilibMatched, emojilibTotal: lib.size };
}

const readJson = <T>(p: string): T => JSON.parse(readFileSync(p, 'utf8')) as T;

/** The emojilib file this version ships (4.x: dist/emoji-en-US.json). */
export function emojilibFile(pkgRoot: string): string {
  const p = join(pkgRoot, 'package', 'dist', 'emoji-en-US.json');
  if (!existsSync(p)) throw new Error(`emojilib: ${p} not found (package layout changed?)`);
  return p;
}

export const SHORTCODE_SETS = ['cldr', 'emojibase', 'github', 'iamcal', 'joypixels'];

export function loadConcepts(emojibaseRoot: string, emojilibRoot: string): ConceptTable {
  const en = join(emojibaseRoot, 'package', 'en');
  return buildConcepts(
    readJson(join(en, 'data.json')), readJson(join(emojibaseRoot, 'package', 'meta', 'groups.json')), readJson(join(en, 'messages.json')),
    readJson(emojilibFile(emojilibRoot)),
    SHORTCODE_SETS.map((s) => readJson<ShortcodeFile>(join(en, 'shortcodes', `${s}.json`))),
  );
}
