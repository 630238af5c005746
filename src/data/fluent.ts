// Fluent Emoji Flat comes as one Iconify JSON: SVG bodies keyed by icon *name* ("grinning-face",
// "artist-dark"), not by codepoint. Names are joined to concept keys three ways, in order of trust:
//   chars  — the package's own chars.json (codepoints -> name);
//   label  — the name equals the slug of an emojibase label ("woman’s sandal" -> "womans-sandal"),
//            with Fluent's tone suffixes ("-medium-dark") read as emojibase's ": medium-dark skin tone";
//   shortcode — the name equals the slug of one of the concept's shortcodes (cldr, github, iamcal, ...);
//   tone   — "<base>-<tone>" where <base> resolves by the above and emojibase has that one-tone variant.
// The name-based methods double as an independent check of chars.json (`agree` / `disagree`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConceptTable } from './emoji.js';
import { conceptKey, slug } from './keys.js';

export interface IconifyIcon {
  body: string;
  width?: number;
  height?: number;
  left?: number;
  top?: number;
  hFlip?: boolean;
  vFlip?: boolean;
  rotate?: number;
}

export interface IconifyAlias extends Omit<IconifyIcon, 'body'> {
  parent: string;
}

export interface IconifyJson {
  prefix: string;
  icons: Record<string, IconifyIcon>;
  aliases?: Record<string, IconifyAlias>;
  width?: number;
  height?: number;
  left?: number;
  top?: number;
}

export type JoinMethod = 'chars' | 'label' | 'shortcode' | 'tone';

export interface FluentJoin {
  /** Base concept key -> icon name drawing it. */
  byKey: Map<string, string>;
  stats: {
    names: number;
    matched: number;
    byMethod: Record<JoinMethod, number>;
    /** Names matched to a skin-tone variant rather than a base concept. */
    variants: number;
    /** chars.json matches that a name-based method confirms / contradicts / cannot check. */
    agree: number;
    disagree: string[];
    unchecked: number;
    unmatched: string[];
  };
}

const TONE_SUFFIX = /-(light|medium-light|medium|medium-dark|dark)$/;
const TONES: Record<string, number> = { light: 1, 'medium-light': 2, medium: 3, 'medium-dark': 4, dark: 5 };

/** Slugs a Fluent name may equal: itself, and its tone suffix spelled the emojibase way. */
function nameCandidates(name: string): string[] {
  return TONE_SUFFIX.test(name) ? [name, name.replace(TONE_SUFFIX, '-$1-skin-tone')] : [name];
}

export function joinFluent(json: IconifyJson, chars: Record<string, string>, table: ConceptTable): FluentJoin {
  const fromChars = new Map<string, string>();
  for (const [hex, name] of Object.entries(chars)) if (!fromChars.has(name)) fromChars.set(name, conceptKey(hex));
  const byLabel = new Map<string, string>();
  for (const c of table.concepts) byLabel.set(slug(c.label), c.key);
  for (const [k, v] of table.variants) if (!byLabel.has(slug(v.label))) byLabel.set(slug(v.label), k);
  const byCode = new Map<string, string>();
  for (const c of table.concepts) for (const s of c.shortcodes) if (!byCode.has(slug(s))) byCode.set(slug(s), c.key);

  const toneOf = new Map<string, string>();
  for (const [k, v] of table.variants) if (typeof v.tone === 'number') toneOf.set(`${v.base}|${v.tone}`, k);

  const names = [...Object.keys(json.icons), ...Object.keys(json.aliases ?? {})].sort();
  const stats: FluentJoin['stats'] = {
    names: names.length, matched: 0, byMethod: { chars: 0, label: 0, shortcode: 0, tone: 0 }, variants: 0,
    agree: 0, disagree: [], unchecked: 0, unmatched: [],
  };
  const viaLabel = (name: string) => nameCandidates(name).map((c) => byLabel.get(c)).find((k) => k !== undefined);
  // Name-only evidence, independent of chars.json.
  const byName = (name: string) => viaLabel(name) ?? byCode.get(name);
  const direct = (name: string): [string, JoinMethod] | undefined => {
    const found: [string | undefined, JoinMethod][] = [[fromChars.get(name), 'chars'], [viaLabel(name), 'label'], [byCode.get(name), 'shortcode']];
    const hit = found.find(([k]) => k !== undefined);
    return hit ? [hit[0]!, hit[1]] : undefined;
  };
  const byKey = new Map<string, string>();
  for (const name of names) {
    const viaChars = fromChars.get(name);
    if (viaChars) {
      const independent = byName(name);
      if (independent === undefined) stats.unchecked++;
      else if (independent === viaChars) stats.agree++;
      else stats.disagree.push(`${name}: chars ${viaChars}, name ${independent}`);
    }
    let [key, method] = direct(name) ?? [];
    const tone = TONE_SUFFIX.exec(name);
    if (!key && tone) {
      const base = direct(name.slice(0, tone.index))?.[0];
      const k = base && toneOf.get(`${base}|${TONES[tone[1]!]}`);
      if (k) [key, method] = [k, 'tone'];
    }
    if (!key || !method) {
      stats.unmatched.push(name);
      continue;
    }
    stats.matched++;
    stats.byMethod[method]++;
    if (table.byKey.has(key)) {
      // Names are sorted, so the pick is stable; a real icon beats an alias of the same concept.
      const prev = byKey.get(key);
      if (!prev || (json.aliases?.[prev] && json.icons[name])) byKey.set(key, name);
    } else if (table.variants.has(key)) stats.variants++;
  }
  return { byKey, stats };
}

/** A standalone SVG for one icon, following alias chains and applying their flips and quarter turns. */
export function iconSvg(json: IconifyJson, name: string, size: number): string {
  let hFlip = false;
  let vFlip = false;
  let rotate = 0;
  let cur = name;
  let props: Partial<IconifyIcon> = {};
  for (let depth = 0; ; depth++) {
    if (depth > 8) throw new Error(`${json.prefix}:${name}: alias chain too deep`);
    const icon = json.icons[cur];
    const alias = json.aliases?.[cur];
    const node = icon ?? alias;
    if (!node) throw new Error(`${json.prefix}:${name}: no icon or alias "${cur}"`);
    // Transforms compose along the chain; the nearest explicit box wins.
    hFlip = hFlip !== !!node.hFlip;
    vFlip = vFlip !== !!node.vFlip;
    rotate += node.rotate ?? 0;
    props = { width: props.width ?? node.width, height: props.height ?? node.height, left: props.left ?? node.left, top: props.top ?? node.top };
    if (icon) {
      props.body = icon.body;
      break;
    }
    cur = alias!.parent;
  }
  const w = props.width ?? json.width ?? 16;
  const h = props.height ?? json.height ?? 16;
  const l = props.left ?? json.left ?? 0;
  const t = props.top ?? json.top ?? 0;
  const tf: string[] = [];
  if (hFlip) tf.push(`translate(${2 * l + w} 0) scale(-1 1)`);
  if (vFlip) tf.push(`translate(0 ${2 * t + h}) scale(1 -1)`);
  if (rotate % 4) tf.unshift(`rotate(${(rotate % 4) * 90} ${l + w / 2} ${t + h / 2})`);
  const body = tf.length ? `<g transform="${tf.join(' ')}">${props.body}</g>` : props.body!;
  return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${size}" height="${size}" viewBox="${l} ${t} ${w} ${h}">${body}</svg>`;
}

export function loadFluent(pkgRoot: string): { json: IconifyJson; chars: Record<string, string> } {
  const dir = join(pkgRoot, 'package');
  return {
    json: JSON.parse(readFileSync(join(dir, 'icons.json'), 'utf8')) as IconifyJson,
    chars: JSON.parse(readFileSync(join(dir, 'chars.json'), 'utf8')) as Record<string, string>,
  };
}
