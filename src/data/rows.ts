// Pure pieces of the manifest build: which concepts a split holds and what a row says.
import type { Concept, ConceptTable } from './emoji.js';
import type { EmojiRow, EmojiStyle } from './manifests.js';

/** Concepts (in emojibase order) drawn by every one of the given styles. */
export function sharedConcepts(table: ConceptTable, styles: readonly ReadonlyMap<string, unknown>[]): Concept[] {
  return table.concepts.filter((c) => styles.every((s) => s.has(c.key)));
}

/** Concepts a single style draws, in emojibase order. */
export const drawnBy = (table: ConceptTable, style: ReadonlyMap<string, unknown>): Concept[] => table.concepts.filter((c) => style.has(c.key));

export function emojiRow(c: Concept, style: EmojiStyle, image: string): EmojiRow {
  return {
    image, style, key: c.key, emoji: c.emoji, label: c.label, group: c.group, groupName: c.groupName,
    subgroup: c.subgroup, subgroupName: c.subgroupName, order: c.order, captions: c.captions,
  };
}

/** Image file name for a key or stamp id: safe on every file system, unique, readable. */
export const imageName = (id: string): string => `${id.replace(/[/\\]+/g, '__').replace(/[^A-Za-z0-9._-]/g, '_')}.png`;

export function countBy<T>(rows: readonly T[], f: (r: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rows) out[f(r)] = (out[f(r)] ?? 0) + 1;
  return out;
}
