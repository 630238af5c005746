// Elementwise ops. Binary ops broadcast, so each input's gradient is summed back to its own shape.
import { attr } from '../graph.js';
import { DTYPE_TO_ONNX } from './shapes.js';
import type { GradRule } from './context.js';

export const elementwiseRules: Record<string, GradRule> = {
  Identity: (_c, _n, [gy]) => [gy],

  Cast: (c, n, [gy]) => [c.op('Cast', [gy!], { to: attr.i(DTYPE_TO_ONNX[c.type(n.inputs[0]!)]!) })],

  Add: (c, n, [gy], need) => {
    const [a, b] = n.inputs as [string, string];
    const y = n.outputs[0]!;
    return [need[0] ? c.sumTo(gy!, y, a) : undefined, need[1] ? c.sumTo(gy!, y, b) : undefined];
  },

  Sub: (c, n, [gy], need) => {
    const [a, b] = n.inputs as [string, string];
    const y = n.outputs[0]!;
    return [need[0] ? c.sumTo(gy!, y, a) : undefined, need[1] ? c.sumTo(c.op('Neg', [gy!]), y, b) : undefined];
  },

  Mul: (c, n, [gy], need) => {
    const [a, b] = n.inputs as [string, string];
    const y = n.outputs[0]!;
    return [
      need[0] ? c.sumTo(c.op('Mul', [gy!, b]), y, a) : undefined,
      need[1] ? c.sumTo(c.op('Mul', [gy!, a]), y, b) : undefined,
    ];
  },

  // y = a / b: da = gy / b, db = -gy * y / b (reuses y instead of recomputing a / b^2).
  Div: (c, n, [gy], need) => {
    const [a, b] = n.inputs as [string, string];
    const y = n.outputs[0]!;
    const ga = c.op('Div', [gy!, b]);
    return [
      need[0] ? c.sumTo(ga, y, a) : undefined,
      need[1] ? c.sumTo(c.op('Neg', [c.op('Mul', [ga, y])]), y, b) : undefined,
    ];
  },

  /** Variadic Sum: every input gets the gradient, un-broadcast. */
  Sum: (c, n, [gy], need) => n.inputs.map((x, k) => (need[k] ? c.sumTo(gy!, n.outputs[0]!, x) : undefined)),

  Neg: (c, _n, [gy]) => [c.op('Neg', [gy!])],

  Exp: (c, n, [gy]) => [c.op('Mul', [gy!, n.outputs[0]!])],

  Log: (c, n, [gy]) => [c.op('Div', [gy!, n.inputs[0]!])],

  // d sqrt(x) = 1 / (2 sqrt(x)): from the output, no recompute.
  Sqrt: (c, n, [gy]) => {
    const y = n.outputs[0]!;
    return [c.op('Div', [c.op('Mul', [gy!, c.constF([0.5], c.type(y))]), y])];
  },

  Sigmoid: (c, n, [gy]) => {
    const y = n.outputs[0]!;
    const oneMinus = c.op('Sub', [c.constF([1], c.type(y)), y]);
    return [c.op('Mul', [gy!, c.op('Mul', [y, oneMinus])])];
  },

  Tanh: (c, n, [gy]) => {
    const y = n.outputs[0]!;
    return [c.op('Mul', [gy!, c.op('Sub', [c.constF([1], c.type(y)), c.op('Mul', [y, y])])])];
  },

  // d erf(x) = 2/sqrt(pi) exp(-x^2)
  Erf: (c, n, [gy]) => {
    const x = n.inputs[0]!;
    const t = c.type(x);
    const e = c.op('Exp', [c.op('Neg', [c.op('Mul', [x, x])])]);
    return [c.op('Mul', [gy!, c.op('Mul', [e, c.constF([2 / Math.sqrt(Math.PI)], t)])])];
  },

  // Subgradient 0 at x = 0, as PyTorch.
  Relu: (c, n, [gy]) => {
    const x = n.inputs[0]!;
    return [c.op('Where', [c.op('Greater', [x, c.constF([0], c.type(x))]), gy!, c.constF([0], c.type(x))])];
  },
};
