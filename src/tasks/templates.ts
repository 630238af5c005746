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

/** Bounds on prompts: every class is filled into every template, and each filled prompt is tokenized. */
export const MAX_TEMPLATES = 1000;
export const MAX_TEMPLATE_CHARS = 1000;
export const MAX_TEMPLATE_SLOTS = 4;
export const MAX_CLASS_NAME_CHARS = 1000;
export const MAX_CLASSES = 100_000;
/** Largest templates / prompts file read. */
const MAX_TEMPLATES_FILE_BYTES = 16 * 2 ** 20;

function checkTemplates(templates: unknown, where: string): string[] {
  if (!Array.isArray(templates) || !templates.length) throw new Error(`${where}: expected a non-empty list of templates`);
  templates.forEach((t, i) => {
    if (typeof t !== 'string' || !t.includes('{}')) throw new Error(`${where}: template ${i + 1} ${JSON.stringify(t)?.slice(0, 100)} has no {} for the class name`);
  });
  boundTemplates(templates, where);
  return templates as string[];
}

function boundTemplates(templates: readonly unknown[], where: string): void {
  if (templates.length > MAX_TEMPLATES) throw new Error(`${where}: ${templates.length} templates, above the limit of ${MAX_TEMPLATES}`);
  templates.forEach((t, i) => {
    if (typeof t !== 'string') throw new Error(`${where}: template ${i + 1} is not a string`);
    if (t.length > MAX_TEMPLATE_CHARS) throw new Error(`${where}: template ${i + 1} has ${t.length} characters, above the limit of ${MAX_TEMPLATE_CHARS}`);
    const slots = t.split('{}').length - 1;
    if (slots > MAX_TEMPLATE_SLOTS) throw new Error(`${where}: template ${i + 1} has ${slots} {} slots, above the limit of ${MAX_TEMPLATE_SLOTS}`);
  });
}

/** Classes and templates as zero-shot uses them: bounded counts and lengths (each pair is one text to embed). */
export function checkPromptSet(classes: readonly string[], templates: readonly string[], where = 'prompts'): void {
  if (classes.length > MAX_CLASSES) throw new Error(`${where}: ${classes.length} classes, above the limit of ${MAX_CLASSES}`);
  classes.forEach((c, i) => {
    if (typeof c !== 'string') throw new Error(`${where}: class ${i + 1} is not a string`);
    if (c.length > MAX_CLASS_NAME_CHARS) throw new Error(`${where}: class ${i + 1} has ${c.length} characters, above the limit of ${MAX_CLASS_NAME_CHARS}`);
  });
  boundTemplates(templates, where);
}

function fromJson(json: any, file: string, dataset?: string): TemplateSet {
  if (Array.isArray(json)) {
    if (dataset) throw new Error(`--dataset ${dataset}: ${file} is a plain list of templates, not per-dataset sets`);
    return { source: file, templates: checkTemplates(json, file) };
  }
  if (!json || typeof json !== 'object') throw new Error(`${file}: expected a JSON object of datasets or a list of templates`);
  if (Array.isArray(json.templates)) {
    const classes = json.classes;
    if (classes !== undefined && (!Array.isArray(classes) || !classes.every((c: unknown) => typeof c === 'string'))) {
      throw new Error(`${file}: "classes" must be a list of strings`);
    }
    if (classes) checkPromptSet(classes, json.templates, file);
    return { source: file, templates: checkTemplates(json.templates, file), classes };
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
  const templates = checkTemplates(set?.templates, where);
  if (classes) checkPromptSet(classes, templates, where);
  return { source: where, templates, classes };
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
    if (statSync(spec).size > MAX_TEMPLATES_FILE_BYTES) throw new Error(`${spec}: larger than a templates file should be (limit ${MAX_TEMPLATES_FILE_BYTES / 2 ** 20} MiB)`);
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
