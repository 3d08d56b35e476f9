import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';

export type IssueCode = OperationOutcomeIssue['code'];

export interface Issue {
  severity?: OperationOutcomeIssue['severity'];
  code: IssueCode;
  diagnostics: string;
  expression?: string[];
}

/** An error that answers as an OperationOutcome with an HTTP status. Throw it anywhere a request is served. */
export class FhirError extends Error {
  readonly status: number;
  readonly issues: Issue[];
  readonly headers: Record<string, string>;

  constructor(status: number, issues: Issue[] | Issue, headers: Record<string, string> = {}) {
    const list = Array.isArray(issues) ? issues : [issues];
    super(list.map((i) => i.diagnostics).join('; '));
    this.status = status;
    this.issues = list;
    this.headers = headers;
  }

  toOperationOutcome(): OperationOutcome {
    return operationOutcome(this.issues);
  }
}

export function operationOutcome(issues: Issue[]): OperationOutcome {
  return {
    resourceType: 'OperationOutcome',
    issue: issues.map((i) => ({
      severity: i.severity ?? 'error',
      code: i.code,
      diagnostics: i.diagnostics,
      ...(i.expression?.length ? { expression: i.expression } : {}),
    })),
  };
}

export function informationOutcome(diagnostics: string): OperationOutcome {
  return operationOutcome([{ severity: 'information', code: 'informational', diagnostics }]);
}

export const badRequest = (diagnostics: string, expression?: string[]) =>
  new FhirError(400, { code: 'invalid', diagnostics, expression });
export const unauthorized = (diagnostics = 'Authentication required / 認証が必要です') =>
  new FhirError(401, { code: 'login', diagnostics }, { 'WWW-Authenticate': 'Bearer' });
export const forbidden = (diagnostics: string) => new FhirError(403, { code: 'forbidden', diagnostics });
export const notFound = (diagnostics: string) => new FhirError(404, { code: 'not-found', diagnostics });
export const gone = (diagnostics: string) => new FhirError(410, { code: 'deleted', diagnostics });
export const conflict = (diagnostics: string) => new FhirError(409, { code: 'conflict', diagnostics });
export const preconditionFailed = (diagnostics: string) => new FhirError(412, { code: 'conflict', diagnostics });
export const notSupported = (diagnostics: string, status = 400) =>
  new FhirError(status, { code: 'not-supported', diagnostics });
export const unprocessable = (issues: Issue[]) => new FhirError(422, issues);
