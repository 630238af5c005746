// A PNG chart of a `clip train` run: loss against step (per-step losses from OUT/train_steps.jsonl, smoothed,
// with each epoch's mean train loss as points) above a panel with the learning rate and, when the run
// validated, the mean retrieval recall per epoch. Drawn as SVG and rasterized by sharp (librsvg), so no
// plotting dependency is needed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parseJsonl } from '../io/jsonl.js';
import { LOG_FILE, readStepLog, STEP_LOG_FILE, type EpochRecord, type StepRecord } from './state.js';

export interface TrainingLog {
  steps: StepRecord[];
  epochs: EpochRecord[];
}

export interface CurveOptions {
  width?: number;
  height?: number;
  title?: string;
}

/** OUT/train_log.jsonl and OUT/train_steps.jsonl, whichever exist; at least one must. */
export function readTrainingLog(dir: string): TrainingLog {
  const logPath = join(dir, LOG_FILE);
  const haveLog = existsSync(logPath);
  if (!haveLog && !existsSync(join(dir, STEP_LOG_FILE))) throw new Error(`no training log in ${dir} (expected ${LOG_FILE} or ${STEP_LOG_FILE})`);
  const epochs = haveLog ? parseJsonl<EpochRecord>(readFileSync(logPath, 'utf8'), logPath).filter((r) => r.type === 'epoch') : [];
  // The trainer rewrites the step log at each checkpoint, so a resumed run never holds a step twice.
  const steps = readStepLog(dir);
  if (!steps.length && !epochs.length) throw new Error(`the training log in ${dir} has no records yet`);
  return { steps, epochs };
}

/** Centered moving average over a window of about 1/50 of the points (loss is noisy per step). */
export function smooth(ys: readonly number[], window = Math.max(1, Math.round(ys.length / 50))): number[] {
  const half = Math.floor(window / 2);
  const prefix = [0];
  for (const y of ys) prefix.push(prefix[prefix.length - 1]! + y);
  return ys.map((_, i) => {
    const a = Math.max(0, i - half);
    const b = Math.min(ys.length, i + half + 1);
    return (prefix[b]! - prefix[a]!) / (b - a);
  });
}

/** About `count` round tick values (1, 2, 5 × 10^n apart) covering [lo, hi], and the spacing. */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; step: number } {
  if (!(hi > lo)) { const d = Math.abs(lo) || 1; lo -= d / 2; hi += d / 2; }
  const raw = (hi - lo) / count;
  // Parsed rather than 10 ** e, which is inexact for negative e (10 ** -4 is 0.00009999999999999999).
  const e = Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => Number(`${m}e${e}`)).find((s) => s >= raw * (1 - 1e-9))!;
  const ticks: number[] = [];
  // Integer multiples of the step, rounded to 12 digits: no 0.6000000000000001 from repeated adding.
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) ticks.push(i === 0 ? 0 : Number((i * step).toPrecision(12)));
  return { ticks, step };
}

/** Tick label: as many decimals as the spacing needs; exponent form for tiny values (learning rates). */
export function tickLabel(v: number, step: number): string {
  if (v === 0) return '0';
  if (step < 1e-3) return v.toExponential(Math.max(0, Math.floor(Math.log10(Math.abs(v)) + 1e-9) - Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (x: number) => x.toFixed(1);

const COLORS = { raw: '#9ecae1', smooth: '#08519c', epoch: '#e6550d', lr: '#31a354', val: '#756bb1', grid: '#e5e5e5', axis: '#444444' };

interface Panel { x: number; y: number; w: number; h: number }

function scale(lo: number, hi: number, a: number, b: number): (v: number) => number {
  return (v) => (hi === lo ? (a + b) / 2 : a + ((v - lo) / (hi - lo)) * (b - a));
}

/** Y range from data, padded a little and widened to the nice ticks around it. */
function yRange(values: number[], fromZero = false): { lo: number; hi: number; ticks: number[]; step: number } {
  let lo = fromZero ? 0 : Math.min(...values);
  let hi = Math.max(...values);
  if (!fromZero) { const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1; lo -= pad; hi += pad; }
  // Rounded outwards to whole steps, so the top and bottom of the panel carry a tick.
  const { step } = niceTicks(lo, hi);
  const ticks: number[] = [];
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  for (let i = first; i <= last; i++) ticks.push(i === 0 ? 0 : Number((i * step).toPrecision(12)));
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, ticks, step };
}

function polyline(pts: [number, number][], color: string, width: number, opacity = 1): string {
  if (!pts.length) return '';
  return `<polyline fill="none" stroke="${color}" stroke-width="${width}" stroke-opacity="${opacity}" stroke-linejoin="round" points="${pts.map(([x, y]) => `${f(x)},${f(y)}`).join(' ')}"/>`;
}

function yAxis(p: Panel, r: { lo: number; hi: number; ticks: number[]; step: number }, side: 'left' | 'right', label: string, color: string, grid: boolean): string {
  const y = scale(r.lo, r.hi, p.y + p.h, p.y);
  const x = side === 'left' ? p.x : p.x + p.w;
  const dx = side === 'left' ? -8 : 8;
  const anchor = side === 'left' ? 'end' : 'start';
  const out = r.ticks.map((t) => [
    grid ? `<line x1="${p.x}" x2="${p.x + p.w}" y1="${f(y(t))}" y2="${f(y(t))}" stroke="${COLORS.grid}"/>` : '',
    `<line x1="${x}" x2="${x + (side === 'left' ? -4 : 4)}" y1="${f(y(t))}" y2="${f(y(t))}" stroke="${COLORS.axis}"/>`,
    `<text x="${x + dx}" y="${f(y(t) + 4)}" text-anchor="${anchor}" font-size="12" fill="${color}">${esc(tickLabel(t, r.step))}</text>`,
  ].join(''));
  const lx = side === 'left' ? p.x - 62 : p.x + p.w + 62;
  out.push(`<text transform="translate(${lx},${f(p.y + p.h / 2)}) rotate(-90)" text-anchor="middle" font-size="13" fill="${color}">${esc(label)}</text>`);
  return out.join('\n');
}

function xAxis(p: Panel, lo: number, hi: number, showLabel: boolean): string {
  const { ticks, step } = niceTicks(lo, hi, 8);
  const x = scale(lo, hi, p.x, p.x + p.w);
  const out = ticks.filter((t) => t >= lo && t <= hi).map((t) => [
    `<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${p.y}" y2="${p.y + p.h}" stroke="${COLORS.grid}"/>`,
    `<line x1="${f(x(t))}" x2="${f(x(t))}" y1="${p.y + p.h}" y2="${p.y + p.h + 4}" stroke="${COLORS.axis}"/>`,
    `<text x="${f(x(t))}" y="${p.y + p.h + 18}" text-anchor="middle" font-size="12" fill="${COLORS.axis}">${esc(tickLabel(t, step))}</text>`,
  ].join(''));
  if (showLabel) out.push(`<text x="${f(p.x + p.w / 2)}" y="${p.y + p.h + 38}" text-anchor="middle" font-size="13" fill="${COLORS.axis}">step</text>`);
  return out.join('\n');
}

function legend(x: number, y: number, items: { label: string; color: string; dot?: boolean }[]): string {
  if (!items.length) return '';
  // A translucent backing keeps the legend readable where a curve passes under it.
  const w = 36 + Math.max(...items.map((it) => it.label.length)) * 7;
  const back = `<rect x="${x - 6}" y="${y - 16}" width="${w}" height="${items.length * 18 + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#dddddd"/>`;
  return back + items.map((it, i) => {
    const yy = y + i * 18;
    const mark = it.dot
      ? `<circle cx="${x + 10}" cy="${yy - 4}" r="4" fill="${it.color}"/>`
      : `<line x1="${x}" x2="${x + 20}" y1="${yy - 4}" y2="${yy - 4}" stroke="${it.color}" stroke-width="2.5"/>`;
    return `${mark}<text x="${x + 28}" y="${yy}" font-size="12" fill="${COLORS.axis}">${esc(it.label)}</text>`;
  }).join('\n');
}

/** The chart as an SVG document. */
export function trainingCurveSvg(log: TrainingLog, opts: CurveOptions = {}): string {
  const W = opts.width ?? 1000;
  const H = opts.height ?? 720;
  if (!log.steps.length && !log.epochs.length) throw new Error('nothing to plot: no step or epoch records');
  if (W < 320 || H < 260) throw new Error(`a ${W}x${H} chart is too small for two panels with axes (at least 320x260)`);
  const left = 90;
  const right = 90;
  const top = 60;
  const gap = 50;
  const bottom = 55;
  const lossH = Math.round((H - top - gap - bottom) * 0.62);
  const loss: Panel = { x: left, y: top, w: W - left - right, h: lossH };
  const lower: Panel = { x: left, y: top + lossH + gap, w: W - left - right, h: H - top - lossH - gap - bottom };

  const stepLoss = log.steps.filter((s): s is StepRecord & { loss: number } => s.loss !== null && Number.isFinite(s.loss));
  const epochLoss = log.epochs.filter((e): e is EpochRecord & { trainLoss: number } => e.trainLoss !== null && Number.isFinite(e.trainLoss));
  const allSteps = [...log.steps.map((s) => s.step), ...log.epochs.map((e) => e.step)];
  const x0 = Math.min(0, ...allSteps);
  const x1 = Math.max(1, ...allSteps);
  const x = scale(x0, x1, loss.x, loss.x + loss.w);
  const parts: string[] = [];
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${W / 2}" y="32" text-anchor="middle" font-size="18" font-weight="bold" fill="#222222">${esc(opts.title ?? 'training curve')}</text>`);

  // Loss panel.
  const lossValues = [...stepLoss.map((s) => s.loss), ...epochLoss.map((e) => e.trainLoss)];
  const legendLoss: { label: string; color: string; dot?: boolean }[] = [];
  if (lossValues.length) {
    const r = yRange(lossValues);
    const y = scale(r.lo, r.hi, loss.y + loss.h, loss.y);
    parts.push(xAxis(loss, x0, x1, false), yAxis(loss, r, 'left', 'loss', COLORS.axis, true));
    if (stepLoss.length) {
      const sm = smooth(stepLoss.map((s) => s.loss));
      parts.push(polyline(stepLoss.map((s) => [x(s.step), y(s.loss)]), COLORS.raw, 1, 0.8));
      parts.push(polyline(stepLoss.map((s, i) => [x(s.step), y(sm[i]!)]), COLORS.smooth, 2.5));
      legendLoss.push({ label: 'loss per step', color: COLORS.raw }, { label: 'smoothed', color: COLORS.smooth });
    }
    if (epochLoss.length) {
      // Without per-step losses the epoch means are the only curve: join them.
      if (!stepLoss.length) parts.push(polyline(epochLoss.map((e) => [x(e.step), y(e.trainLoss)]), COLORS.epoch, 2));
      parts.push(...epochLoss.map((e) => `<circle cx="${f(x(e.step))}" cy="${f(y(e.trainLoss))}" r="5" fill="${COLORS.epoch}" stroke="#ffffff" stroke-width="1.5"/>`));
      legendLoss.push({ label: 'epoch mean train loss', color: COLORS.epoch, dot: true });
    }
  } else {
    parts.push(xAxis(loss, x0, x1, false), `<text x="${f(loss.x + loss.w / 2)}" y="${f(loss.y + loss.h / 2)}" text-anchor="middle" font-size="14" fill="${COLORS.axis}">no loss recorded</text>`);
  }
  parts.push(`<rect x="${loss.x}" y="${loss.y}" width="${loss.w}" height="${loss.h}" fill="none" stroke="${COLORS.axis}"/>`);
  parts.push(legend(loss.x + loss.w - 190, loss.y + 20, legendLoss));

  // Lower panel: learning rate (left axis), validation mean recall (right axis).
  const lrPts = log.steps.length ? log.steps.map((s) => [s.step, s.lr] as const) : log.epochs.map((e) => [e.step, e.lr] as const);
  const lrOk = lrPts.filter(([, v]) => Number.isFinite(v));
  const val = log.epochs.filter((e) => e.val?.mean !== null && e.val?.mean !== undefined).map((e) => [e.step, e.val!.mean!] as const);
  parts.push(xAxis(lower, x0, x1, true));
  const legendLower: { label: string; color: string; dot?: boolean }[] = [];
  if (lrOk.length) {
    const r = yRange(lrOk.map(([, v]) => v), true);
    const y = scale(r.lo, r.hi, lower.y + lower.h, lower.y);
    parts.push(yAxis(lower, r, 'left', 'learning rate', COLORS.lr, true));
    parts.push(polyline(lrOk.map(([s, v]) => [x(s), y(v)]), COLORS.lr, 2));
    legendLower.push({ label: 'learning rate', color: COLORS.lr });
  }
  if (val.length) {
    const r = yRange(val.map(([, v]) => v), true);
    const y = scale(r.lo, r.hi, lower.y + lower.h, lower.y);
    parts.push(yAxis(lower, r, 'right', 'val mean recall', COLORS.val, !lrOk.length));
    parts.push(polyline(val.map(([s, v]) => [x(s), y(v)]), COLORS.val, 2));
    parts.push(...val.map(([s, v]) => `<circle cx="${f(x(s))}" cy="${f(y(v))}" r="4.5" fill="${COLORS.val}"/>`));
    legendLower.push({ label: 'validation mean recall (R@1/5/10, both directions)', color: COLORS.val, dot: true });
  }
  parts.push(`<rect x="${lower.x}" y="${lower.y}" width="${lower.w}" height="${lower.h}" fill="none" stroke="${COLORS.axis}"/>`);
  parts.push(legend(lower.x + 12, lower.y + 20, legendLower));

  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">\n${parts.filter(Boolean).join('\n')}\n</svg>\n`;
}

/** Read OUT's logs and write the chart to `outPng`. */
export async function renderTrainingCurve(logDir: string, outPng: string, opts: CurveOptions = {}): Promise<{ width: number; height: number; steps: number; epochs: number }> {
  const log = readTrainingLog(logDir);
  const svg = trainingCurveSvg(log, { title: `training curve: ${logDir}`, ...opts });
  const info = await sharp(Buffer.from(svg)).png().toFile(outPng);
  return { width: info.width, height: info.height, steps: log.steps.length, epochs: log.epochs.length };
}
