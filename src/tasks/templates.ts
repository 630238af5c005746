// Prompt templates for zero-shot classification and evaluation: built-in sets, a prompts JSON (per-dataset `classes` and
// `templates`, the layout of CLIP's published prompt lists), or a text file with one template per line.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname } from 'node:path';

export interface TemplateSet {
  /** Where the templates came from, for reports. */
  source: string;
  templates: string[];
  /** Class names when the prompts file gives them for the chosen dataset. */
  classes?: string[];
}

/** Small built-in sets; the full per-dataset lists come from a prompts JSON file. */
export const BUILTIN_TEMPLATES: Record<string, string[]> = {
  label: ['{}'],
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
/** Alias kept for the CLI's help text. */
export const TEMPLATE_SETS = BUILTIN_TEMPLATES;
export type TemplateSpec = TemplateSet;

function checkTemplates(templates: unknown, where: string): string[] {
  if (!Array.isArray(templates) || !templates.length) throw new Error(`${where}: expected a non-empty list of templates`);
  templates.forEach((t, i) => {
    if (typeof t !== 'string' || !t.includes('{}')) throw new Error(`${where}: template ${i + 1} ${JSON.stringify(t)} has no {} for the class name`);
  });
  return templates as string[];
}

function fromJson(json: any, file: string, dataset?: string): TemplateSet {
  if (Array.isArray(json)) {
    if (dataset) throw new Error(`--dataset ${dataset}: ${file} is a plain list of templates, not per-dataset sets`);
    return { source: file, templates: checkTemplates(json, file) };
  }
  if (!json || typeof json !== 'object') throw new Error(`${file}: expected a JSON object of datasets or a list of templates`);
  if (Array.isArray(json.templates)) {
    return { source: file, templates: checkTemplates(json.templates, file), classes: json.classes };
  }
  const names = Object.keys(json);
  let name: string | undefined;
  if (dataset) {
    name = names.find((n) => n === dataset) ?? names.find((n) => n.toLowerCase() === dataset.toLowerCase());
    if (!name) throw new Error(`--dataset ${dataset}: not in ${file} (it has ${names.join(', ')})`);
  } else if (names.length === 1) {
    name = names[0]!;
  } else {
    throw new Error(`${file} holds ${names.length} prompt sets; pick one with --dataset NAME (${names.join(', ')})`);
  }
  const set = json[name];
  const where = `${file} [${name}]`;
  const classes = set?.classes;
  if (classes !== undefined && (!Array.isArray(classes) || !classes.every((c: unknown) => typeof c === 'string'))) {
    throw new Error(`${where}: "classes" must be a list of strings`);
  }
  return { source: where, templates: checkTemplates(set?.templates, where), classes };
}

/**
 * Resolve `--templates NAME|FILE` (default: the label itself). A `.json` file (or one starting with `{`/`[`)
 * is a prompts file; any other file has one template per line (blank lines and `#` comments skipped).
 */
export function loadTemplates(spec?: string, dataset?: string): TemplateSet {
  if (spec === undefined) {
    if (dataset) throw new Error(`--dataset ${dataset} needs --templates FILE (a prompts JSON)`);
    return { source: 'label', templates: BUILTIN_TEMPLATES.label! };
  }
  if (existsSync(spec) && statSync(spec).isFile()) {
    const text = readFileSync(spec, 'utf8');
    const head = text.trimStart()[0];
    if (extname(spec).toLowerCase() === '.json' || head === '{' || head === '[') {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new Error(`${spec}: not valid JSON (${(e as Error).message})`);
      }
      return fromJson(json, spec, dataset);
    }
    if (dataset) throw new Error(`--dataset ${dataset}: ${spec} is a plain template list, not a prompts JSON`);
    const templates = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    return { source: spec, templates: checkTemplates(templates, spec) };
  }
  const builtin = BUILTIN_TEMPLATES[spec];
  if (!builtin) throw new Error(`--templates ${spec}: no such file, and not a built-in set (${Object.keys(BUILTIN_TEMPLATES).join(', ')})`);
  if (dataset) throw new Error(`--dataset ${dataset} needs --templates FILE (a prompts JSON), not the built-in set ${spec}`);
  return { source: spec, templates: builtin };
}

/** Fill a template with a class name (every `{}`). */
export const fillTemplate = (template: string, name: string): string => template.replaceAll('{}', name);
