import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import { isObject } from './instances.js';
import { error, type ValidationIssue } from './issues.js';

type Json = Record<string, unknown>;

export interface InvariantSource {
  key: string;
  human: string;
  expression: string;
  /** Element path the expression is evaluated on (`Patient.contact`, `Period`, `Consent`). */
  base: string;
  severity?: 'error' | 'warning';
}

type Evaluator = (node: unknown, env: Record<string, unknown>) => unknown[];

const options = { traceFn: () => undefined };
const NO_GUARD = /descendants\(|children\(|repeat\(|%(?!ucum\b)|\$index|\$total/;

const present = (v: unknown) => typeof v === 'string' || isObject(v) || (Array.isArray(v) && v.some(isObject));

/**
 * When the FHIRPath of an invariant needs evaluating, for expressions evaluated on every resource of a
 * type (R4's ppc-1 and the gateway profiles' renkei-pat-1 and ppc-1): false when the element shows
 * plainly that the invariant holds (a name with a family or text; a policy or policyRule). Keyed by the
 * whole expression, so that an invariant written otherwise is evaluated as written.
 */
export const EXPRESSION_GUARDS: Record<string, (node: Json) => boolean> = {
  'name.where(family.exists() or text.exists()).exists()': (node) =>
    !(Array.isArray(node.name) && node.name.some((n) => isObject(n) && (present(n.family) || present(n.text)))),
  'policy.exists() or policyRule.exists()': (node) => !(present(node.policy) || present(node.policyRule)),
};

/** Names the expression may read: when a node has none of them, the result is the one on an empty node. */
function namesRead(expression: string): Set<string> | undefined {
  if (NO_GUARD.test(expression)) return undefined;
  const withoutLiterals = expression.replace(/'(?:[^'\\]|\\.)*'/g, "''").replace(/`[^`]*`/g, '');
  return new Set(withoutLiterals.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? []);
}

/**
 * A FHIRPath invariant compiled once with the R4 model. It fails only when the expression is `false`: an
 * empty result (e.g. dates of different precision compared) is not a violation.
 */
export class FhirPathInvariant {
  readonly key: string;
  readonly human: string;
  readonly expression: string;
  private readonly base: string;
  private readonly severity: 'error' | 'warning';
  private evaluator?: Evaluator;
  private readonly reads?: Set<string>;
  private holdsWhenEmpty?: boolean;
  /** Set when the expression does not compile or throws: reported once, never rejects a resource. */
  broken?: string;

  private readonly guard?: (node: Json) => boolean;

  /** `guard`: false when the invariant holds without evaluating it (by default the expression's EXPRESSION_GUARDS entry). */
  constructor(source: InvariantSource, guard?: (node: Json) => boolean) {
    this.guard = guard ?? (Object.hasOwn(EXPRESSION_GUARDS, source.expression) ? EXPRESSION_GUARDS[source.expression] : undefined);
    this.key = source.key;
    this.human = source.human;
    this.expression = source.expression;
    this.base = source.base;
    this.severity = source.severity ?? 'error';
    this.reads = namesRead(source.expression);
  }

  /** Compiles now (profiles do this at load so that a bad expression is found at start). */
  compile(): this {
    if (!this.evaluator && !this.broken) {
      try {
        this.evaluator = fhirpath.compile({ base: this.base, expression: this.expression }, r4model, options) as unknown as Evaluator;
      } catch (e) {
        this.broken = (e as Error).message;
      }
    }
    return this;
  }

  /** The issue when `node` violates the invariant, otherwise undefined. */
  check(node: Json, path: string, resource: Json, root: Json): ValidationIssue | undefined {
    if (this.guard && !this.guard(node)) return undefined;
    if (this.reads && !this.touches(node) && this.holdsOnEmpty(node)) return undefined;
    this.compile();
    if (!this.evaluator) return undefined;
    let result: unknown[];
    try {
      result = this.evaluator(node, { resource, rootResource: root });
    } catch {
      return undefined; // an expression fhirpath.js cannot evaluate on this input does not reject data
    }
    if (!(result.length === 1 && result[0] === false)) return undefined;
    const issue = error('invariant', `${this.key}: ${this.human}`, path);
    issue.severity = this.severity;
    return issue;
  }

  private touches(node: Json): boolean {
    for (const key in node) {
      if (this.reads!.has(key.startsWith('_') ? key.slice(1) : key)) return true;
    }
    return false;
  }

  private holdsOnEmpty(node: Json): boolean {
    if (this.holdsWhenEmpty === undefined) {
      this.compile();
      const empty = typeof node.resourceType === 'string' ? { resourceType: node.resourceType } : {};
      try {
        const result = this.evaluator ? this.evaluator(empty, { resource: empty, rootResource: empty }) : [];
        this.holdsWhenEmpty = !(result.length === 1 && result[0] === false);
      } catch {
        this.holdsWhenEmpty = false;
      }
    }
    return this.holdsWhenEmpty;
  }
}
