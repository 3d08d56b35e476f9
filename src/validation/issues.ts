/** One finding of validation, shaped like an OperationOutcome.issue. */
export interface ValidationIssue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: string;
  diagnostics: string;
  expression?: string[];
}

export const error = (code: string, diagnostics: string, expression?: string): ValidationIssue =>
  expression === undefined ? { severity: 'error', code, diagnostics } : { severity: 'error', code, diagnostics, expression: [expression] };

export const hasErrors = (issues: ValidationIssue[]): boolean =>
  issues.some((i) => i.severity === 'error' || i.severity === 'fatal');

/** Appends a property to a FHIRPath location; `_given` (a primitive's extensions) is reported as `given`. */
export function childPath(parent: string, property: string): string {
  return `${parent}.${property.startsWith('_') ? property.slice(1) : property}`;
}

/** A JSON value in one line, shortened for messages. */
export function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
