// Prompt templates for zero-shot classification: named sets, or a user file.
import { existsSync, readFileSync } from 'node:fs';

/** Built-in sets. `{}` is replaced by the class name. */
export const TEMPLATE_SETS: Record<string, string[]> = {
  plain: ['{}'],
  photo: ['a photo of a {}.'],
  // A small ensemble of everyday phrasings; averaging several prompts makes scores less sensitive to wording.
  ensemble: [
    'a photo of a {}.',
    'a close-up photo of a {}.',
    'a picture of the {}.',
    'an image of a {}.',
    'a drawing of a {}.',
    'a blurry photo of a {}.',
    'a cropped photo of the {}.',
  ],
  zh: ['{}', '一张{}的照片。', '{}的图片。', '一幅{}的画。'],
};

export interface TemplateSpec {
  templates: string[];
  /** Class names, when the file carried them (per-dataset sets). */
  classes?: string[];
}

/**
 * A template set by name, or from a file: JSON in the zero-shot prompts layout
 * (`{ "<dataset>": { "classes": [...], "templates": [...] } }`, pick one with `dataset`), a JSON
 * array / `{ "templates": [...] }`, or text with one template per line.
 */
export function loadTemplates(spec: string, dataset?: string): TemplateSpec {
  if (TEMPLATE_SETS[spec]) return { templates: TEMPLATE_SETS[spec]! };
  if (!existsSync(spec)) {
    throw new Error(`templates "${spec}" is neither a built-in set (${Object.keys(TEMPLATE_SETS).join(', ')}) nor a file`);
  }
  const text = readFileSync(spec, 'utf8');
  let out: TemplateSpec;
  if (spec.endsWith('.json')) {
    let json: any;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`templates file ${spec} is not valid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(json)) out = { templates: json };
    else if (Array.isArray(json.templates)) out = { templates: json.templates, classes: json.classes };
    else {
      const sets = Object.keys(json);
      const name = dataset ?? (sets.length === 1 ? sets[0] : undefined);
      if (!name || !json[name]) {
        throw new Error(`templates file ${spec} holds several sets; choose one with --dataset (${sets.slice(0, 10).join(', ')}${sets.length > 10 ? ', ...' : ''})`);
      }
      out = { templates: json[name].templates, classes: json[name].classes };
    }
  } else {
    out = { templates: text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#')) };
  }
  if (!out.templates?.length || !out.templates.every((t) => typeof t === 'string')) throw new Error(`templates file ${spec} has no templates`);
  const bad = out.templates.find((t) => !t.includes('{}'));
  if (bad !== undefined) throw new Error(`template "${bad}" in ${spec} has no {} for the class name`);
  return out;
}

export function fillTemplate(template: string, label: string): string {
  return template.replaceAll('{}', label);
}
