// The gradient rule for each ONNX op autodiff knows, and the ops through which no gradient flows.
import type { GradRule } from './context.js';
import { elementwiseRules } from './elementwise.js';
import { layoutRules } from './layout.js';
import { linalgRules } from './linalg.js';
import { reduceRules } from './reduce.js';

export const GRAD_RULES: Record<string, GradRule> = {
  ...elementwiseRules,
  ...linalgRules,
  ...layoutRules,
  ...reduceRules,
};

/** Outputs of these carry no gradient (integer/boolean results, or constant with respect to their inputs). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape', 'Size', 'ConstantOfShape', 'EyeLike', 'NonZero', 'Equal', 'Greater', 'Less', 'GreaterOrEqual',
  'LessOrEqual', 'Not', 'And', 'Or', 'ArgMax', 'ArgMin', 'Range', 'Sign', 'Floor', 'Ceil', 'Round',
]);

export { GradContext, type GradRule } from './context.js';
export { ShapeInfo, type DType, type SymDim } from './shapes.js';
