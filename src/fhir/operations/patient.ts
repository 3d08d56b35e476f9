import type { Request, Response } from 'express';
import { authOf, checkScope } from '../../auth/context.js';
import { accessLog, accessLogCsv } from '../../audit/export.js';
import { auditRow } from '../../audit/events.js';
import { explainAccess } from '../../consent/explain.js';
import { changeLink } from '../../consent/linking.js';
import type { Services } from '../../services.js';
import { parseDateRange } from '../../store/search/dates.js';
import { everythingJson } from '../bundles.js';
import type { Caller } from '../caller.js';
import { fhirBase, sendJson, sendResult } from '../http.js';
import { badRequest, FhirError } from '../outcome.js';
import { parameterNamed } from './parameters.js';
import type { FhirService } from '../service.js';

export interface OperationContext {
  req: Request;
  res: Response;
  caller: Caller;
}

/** The Patient instance operations: $everything, $access, $access-log (GET) and $link, $unlink (POST). */
export function patientOperations(fhir: FhirService, services: Services) {
  const base = (req: Request) => fhirBase(req, services.config);

  /** Patient/{id}/$everything: the compartment (following links), as far as the caller may see it. */
  async function everything({ req, res, caller }: OperationContext) {
    checkScope(authOf(res), 'Patient', 'read');
    const patientId = String(req.params.id);
    const count = Math.min(Number(/^\d{1,4}$/.test(String(req.query._count)) ? req.query._count : 100), 1000);
    const offset = Number(/^\d{1,9}$/.test(String(req.query._offset)) ? req.query._offset : 0);
    const { rows, total } = await fhir.everything(caller, patientId, count, offset);
    const self = `${base(req)}/Patient/${patientId}/$everything`;
    const next = offset + count < total ? `${self}?_count=${count}&_offset=${offset + count}` : undefined;
    sendJson(res, 200, everythingJson(`${self}?_count=${count}&_offset=${offset}`, rows, total, next));
  }

  /** Patient/{id}/$access?actor=Organization/{id}[&purpose=…][&resource=Type/id]: explains what the actor may see. */
  async function access({ req, res, caller }: OperationContext) {
    const auth = authOf(res);
    checkScope(auth, 'Consent', 'read');
    const patientId = String(req.params.id);
    await fhir.read(caller, 'Patient', patientId);
    const actor = /^Organization\/([A-Za-z0-9\-.]{1,64})$/.exec(String(req.query.actor ?? ''))?.[1];
    if (!actor) throw new FhirError(400, { code: 'required', diagnostics: 'actor=Organization/<id> is required', expression: ['actor'] });
    const purpose = typeof req.query.purpose === 'string' ? req.query.purpose : 'TREAT';
    if (!/^[A-Z]{2,12}$/.test(purpose)) throw badRequest('purpose must be a v3 PurposeOfUse code such as TREAT', ['purpose']);
    let resource: { type: string; id: string } | undefined;
    if (req.query.resource !== undefined) {
      const m = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(String(req.query.resource));
      if (!m) throw badRequest('resource must be Type/id', ['resource']);
      resource = { type: m[1], id: m[2] };
    }
    const answer = await explainAccess(services.db, { owner: auth.admin ? undefined : auth.organizationId, patientId, actor, purpose, resource });
    await services.audit.record(auditRow({
      interaction: 'operation', operation: '$access', actor: caller, patientId, entities: [`Patient/${patientId}`, `Organization/${actor}`],
    }));
    sendJson(res, 200, JSON.stringify(answer));
  }

  /** Patient/{id}/$link and $unlink: audited with both records, refused attempts included. */
  async function link({ req, res, caller }: OperationContext, unlink: boolean) {
    checkScope(authOf(res), 'Patient', 'update');
    const patientId = String(req.params.id);
    const operation = unlink ? '$unlink' : '$link';
    let other: string | undefined;
    const facts = () => ({ interaction: 'operation' as const, operation, actor: caller, patientId, entities: [`Patient/${patientId}`, ...(other ? [other] : [])] });
    try {
      other = parameterNamed(req.body, 'other')?.valueReference?.reference;
      const result = await changeLink(fhir, caller, patientId, req.body, unlink);
      await services.audit.record(auditRow(facts()));
      sendResult(req, res, result, services.config, true);
    } catch (err) {
      if (err instanceof FhirError) await services.audit.record(auditRow({ ...facts(), outcome: '4', outcomeDesc: err.message.slice(0, 500) }));
      throw err;
    }
  }

  /** Patient/{id}/$access-log[?since=…][&_format=csv]: the patient's access log, for disclosure requests. */
  async function exportAccessLog({ req, res, caller }: OperationContext) {
    checkScope(authOf(res), 'AuditEvent', 'read');
    const patientId = String(req.params.id);
    await fhir.read(caller, 'Patient', patientId);
    const since = typeof req.query.since === 'string' ? parseDateRange(req.query.since)?.lo : undefined;
    if (req.query.since !== undefined && !since) throw badRequest('since must be a date or dateTime', ['since']);
    const entries = await accessLog(services.db, caller, patientId, since);
    await services.audit.record(auditRow({ interaction: 'operation', operation: '$access-log', actor: caller, patientId, entities: [`Patient/${patientId}`] }));
    const format = String(req.query._format ?? '');
    if (format === 'csv' || format === 'text/csv' || (!format && /text\/csv/.test(req.get('accept') ?? ''))) {
      res.status(200).type('text/csv; charset=utf-8')
        .set('Content-Disposition', `attachment; filename="access-log-${patientId}.csv"`).send(accessLogCsv(entries));
      return;
    }
    const bundle = `{"resourceType":"Bundle","type":"collection","total":${entries.length},"entry":[${
      entries.map((e) => `{"fullUrl":${JSON.stringify(`${base(req)}/AuditEvent/${e.id}`)},"resource":${JSON.stringify(e.event)}}`).join(',')}]}`;
    sendJson(res, 200, bundle);
  }

  return {
    get: { $everything: everything, $access: access, '$access-log': exportAccessLog } as Record<string, (ctx: OperationContext) => Promise<void>>,
    post: {
      $link: (ctx: OperationContext) => link(ctx, false),
      $unlink: (ctx: OperationContext) => link(ctx, true),
    } as Record<string, (ctx: OperationContext) => Promise<void>>,
  };
}
