import { newId } from '../store/ids.js';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { AuditEvent } from '@medplum/fhirtypes';
import { authOf, checkScope } from '../auth/context.js';
import { readAuditEvent, searchAuditEvents } from '../audit/query.js';
import type { Services } from '../services.js';
import type { QueryParams } from '../store/search/request.js';
import { fhirBase, sendJson } from './http.js';
import { FhirError, forbidden, notFound } from './outcome.js';
import { sealAuditChain, verifyAuditChain, type ChainReport } from '../audit/chain.js';
import { assertValidResource } from './validate.js';

/**
 * /fhir/AuditEvent: served from the append-only audit table. Entries can be searched, read and
 * recorded (a client's own AuditEvent); never changed or deleted.
 */
export function auditEventRouter(services: Services): express.Router {
  const router = express.Router();
  const wrap = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) =>
    fn(req, res).catch(next);
  const viewer = (res: Response) => authOf(res);

  router.get('/', wrap(async (req, res) => {
    checkScope(authOf(res), 'AuditEvent', 'search');
    const query = [...new URLSearchParams(req.originalUrl.split('?')[1] ?? '')] as QueryParams;
    const { rows, total, count, offset } = await searchAuditEvents(services.db, viewer(res), query);
    const base = fhirBase(req, services.config);
    const self = `${base}/AuditEvent${req.originalUrl.includes('?') ? `?${req.originalUrl.split('?')[1]}` : ''}`;
    const links = [{ relation: 'self', url: self }];
    if (offset + count < total) {
      const next = new URLSearchParams(query);
      next.set('_offset', String(offset + count));
      links.push({ relation: 'next', url: `${base}/AuditEvent?${next}` });
    }
    const entries = rows.map((r) => `{"fullUrl":"${base}/AuditEvent/${r.id}","resource":${r.json},"search":{"mode":"match"}}`);
    const head = JSON.stringify({ resourceType: 'Bundle', type: 'searchset', total, link: links });
    sendJson(res, 200, entries.length ? `${head.slice(0, -1)},"entry":[${entries.join(',')}]}` : head);
  }));

  const verify = wrap(async (_req, res) => {
    if (!authOf(res).admin) throw forbidden('Only the administrator verifies the audit chain / 管理者のみ');
    await sealAuditChain(services.db);
    const report = await verifyAuditChain(services.db);
    sendJson(res, 200, JSON.stringify(chainParameters(report)));
  });
  router.get('/\$verify', verify);
  router.post('/\$verify', verify);

  router.get('/:id', wrap(async (req, res) => {
    checkScope(authOf(res), 'AuditEvent', 'read');
    const json = await readAuditEvent(services.db, viewer(res), String(req.params.id));
    if (!json) throw notFound(`AuditEvent/${req.params.id} is not known / 見つかりません`);
    sendJson(res, 200, json);
  }));

  router.post('/', wrap(async (req, res) => {
    const auth = authOf(res);
    checkScope(auth, 'AuditEvent', 'create');
    const event = assertValidResource(req.body, 'AuditEvent') as AuditEvent;
    const id = newId();
    const stored: AuditEvent = { ...event, id, meta: { versionId: '1', lastUpdated: new Date().toISOString() } };
    const entity = (event.entity ?? []).map((e) => e.what?.reference).filter((r): r is string => !!r);
    const patient = entity.find((r) => r.startsWith('Patient/'))?.slice('Patient/'.length) ?? null;
    await services.db.query(
      `INSERT INTO audit_event (id, recorded, action, outcome, agent_org, agent_client, owner, patient_id, entity, purpose, content)
       VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8, $9, $10)`,
      [id, event.recorded, event.subtype?.[0]?.code ?? event.action ?? null, event.outcome ?? null, auth.organizationId ?? null,
        auth.clientId ?? null, patient, entity, event.purposeOfEvent?.[0]?.coding?.[0]?.code ?? null, JSON.stringify(stored)],
    );
    res.status(201).set('Location', `${fhirBase(req, services.config)}/AuditEvent/${id}`);
    sendJson(res, 201, JSON.stringify(stored));
  }));

  router.all(['/', '/:id', '/:id/*rest'], (req, _res, next) =>
    next(new FhirError(405, { code: 'not-supported', diagnostics: 'AuditEvents are append-only: they cannot be changed or deleted / 監査記録は変更・削除できません' }, { Allow: 'GET, POST' })),
  );
  return router;
}

/** The $verify answer: whether the chain holds, how many entries were checked, the first broken one. */
function chainParameters(report: ChainReport) {
  return {
    resourceType: 'Parameters',
    parameter: [
      { name: 'intact', valueBoolean: report.intact },
      { name: 'checked', valueInteger: report.checked },
      ...(report.head ? [{ name: 'head', part: [
        { name: 'position', valueInteger: report.head.position }, { name: 'hash', valueString: report.head.hash }] }] : []),
      ...(report.broken ? [{ name: 'firstBroken', part: [
        { name: 'position', valueInteger: report.broken.position },
        ...(report.broken.id ? [{ name: 'auditEvent', valueReference: { reference: `AuditEvent/${report.broken.id}` } }] : []),
        { name: 'reason', valueString: report.broken.reason },
      ] }] : []),
    ],
  };
}
