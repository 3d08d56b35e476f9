import type { Request, Response } from 'express';
import { authOf, checkScope } from '../../auth/context.js';
import type { Services } from '../../services.js';
import { ADMIN_VIEWER, canWrite } from '../../store/access.js';
import type { Caller } from '../caller.js';
import { sendJson } from '../http.js';
import { badRequest, operationOutcome, type Issue } from '../outcome.js';
import type { FhirService } from '../service.js';
import { validationIssues } from '../validate.js';
import { parametersBody } from './parameters.js';

const MODES = ['create', 'update', 'delete'];

/**
 * [Type]/$validate and [Type]/[id]/$validate (mode create, update or delete, from the query or the
 * Parameters). On an instance the resource must be one the caller may see: a hidden one answers 404
 * exactly like a missing one, so $validate never tells that it exists.
 */
export async function validateOperation(fhir: FhirService, services: Services, req: Request, res: Response, caller: Caller, type: string) {
  checkScope(authOf(res), type, 'operation');
  const parameters = req.body?.resourceType === 'Parameters' ? (parametersBody(req.body)?.parameter ?? []) : undefined;
  const body = parameters ? parameters.find((p) => p.name === 'resource')?.resource : req.body;
  const mode = String(req.query.mode ?? parameters?.find((p) => p.name === 'mode')?.valueCode ?? 'create');
  if (!MODES.includes(mode)) throw badRequest(`mode must be one of ${MODES.join(', ')}`, ['mode']);
  const id = req.params.id ? String(req.params.id) : undefined;
  if (mode !== 'create' && !id) throw badRequest(`mode ${mode} validates an instance: POST [type]/[id]/$validate`, ['mode']);
  const issues: Issue[] = [];
  if (id) {
    await fhir.read(caller, type, id).catch((err: { status?: number }) => {
      if (err.status !== 410) throw err; // a deletion may be updated (recreated) or deleted again
    });
    const current = await services.repo.read(type, id, ADMIN_VIEWER);
    if (mode !== 'create' && current && !canWrite(caller, current)) {
      issues.push({ severity: 'error', code: 'forbidden', diagnostics: `${type}/${id} belongs to another organization; only its owner may ${mode} it / 他の機関のデータは変更できません` });
    }
  }
  if (mode !== 'delete') {
    const profile = typeof req.query.profile === 'string' ? req.query.profile : undefined;
    issues.push(...validationIssues(body, profile));
    if ((body as { resourceType?: string } | undefined)?.resourceType !== type) {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: `Expected a ${type}`, expression: ['resourceType'] });
    }
    if (mode === 'update' && (body as { id?: string } | undefined)?.id !== id) {
      issues.push({ severity: 'error', code: 'invalid', diagnostics: `The resource's id must be ${id}`, expression: ['id'] });
    }
  }
  if (!issues.length) issues.push({ severity: 'information', code: 'informational', diagnostics: 'Validation passed / 検証に合格しました' });
  sendJson(res, 200, JSON.stringify(operationOutcome(issues)));
}
