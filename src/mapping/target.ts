/**
 * Writing a value into a resource at a FHIR path: `a.b[0].c`, `a[+]` (a new element at the end of the
 * list), `a[=]` (the last element, as FHIR Shorthand writes it), `value[x]` (the element name completed
 * by the type the transform chose). Intermediate objects and
 * arrays are made only when a value is written, so an absent source field leaves no empty element.
 */

type Json = Record<string, unknown>;

interface Step {
  name: string;
  index?: number | '+' | '=';
  choice?: boolean;
}

const STEP = /^([A-Za-z][A-Za-z0-9]*)(?:\[(\d+|\+|=|x)\])?$/;
const compiled = new Map<string, Step[] | undefined>();

export function parseTarget(path: string): Step[] | undefined {
  if (compiled.has(path)) return compiled.get(path);
  const steps: Step[] = [];
  const parts = path.split('.');
  for (const [i, part] of parts.entries()) {
    const m = STEP.exec(part);
    if (!m) {
      compiled.set(path, undefined);
      return undefined;
    }
    const mark = m[2];
    if (mark === 'x' && i !== parts.length - 1) {
      compiled.set(path, undefined);
      return undefined;
    }
    const index = mark === '+' || mark === '=' ? mark : mark && mark !== 'x' ? Number(mark) : undefined;
    steps.push({ name: m[1], ...(mark === 'x' ? { choice: true } : index !== undefined ? { index } : {}) });
  }
  compiled.set(path, steps);
  return steps;
}

/** A value for a choice element (`value[x]`): the type completes the element name. */
export class Choice {
  constructor(readonly type: string, readonly value: unknown) {}
}

export class TargetError extends Error {}

export function setAt(resource: Json, path: string, value: unknown): void {
  const steps = parseTarget(path);
  if (!steps) throw new TargetError(`"${path}" is not a target path`);
  let node: Json = resource;
  for (const [i, step] of steps.entries()) {
    const last = i === steps.length - 1;
    if (step.choice) {
      if (!(value instanceof Choice)) throw new TargetError(`${path}: the transform must choose the type of ${step.name}[x]`);
      node[`${step.name}${value.type}`] = value.value;
      return;
    }
    if (step.index === undefined) {
      if (last) {
        node[step.name] = value;
        return;
      }
      node = (node[step.name] ??= {}) as Json;
      continue;
    }
    const array = (node[step.name] ??= []) as unknown[];
    if (!Array.isArray(array)) throw new TargetError(`${path}: ${step.name} is not a list`);
    const at = step.index === '+' ? array.length : step.index === '=' ? Math.max(array.length - 1, 0) : step.index;
    if (last) {
      array[at] = value;
      return;
    }
    node = (array[at] ??= {}) as Json;
  }
}

/** Drops the holes left in lists where a lower index had no value (category[1] written, category[0] not). */
export function compact<T>(value: T): T {
  if (Array.isArray(value)) {
    for (let i = value.length - 1; i >= 0; i--) {
      if (value[i] === undefined) value.splice(i, 1);
      else compact(value[i]);
    }
  } else if (value && typeof value === 'object' && !(value instanceof Choice)) {
    for (const key in value) {
      const child = (value as Record<string, unknown>)[key];
      if (child && typeof child === 'object') compact(child);
    }
  }
  return value;
}

/** The top-level element a path writes (`dosageInstruction[0].text` → dosageInstruction). */
export function topElement(path: string): string {
  return /^[A-Za-z][A-Za-z0-9]*/.exec(path)?.[0] ?? path;
}
