import express from 'express';
import { requireAdmin } from '../auth/middleware.js';
import { badRequest, conflict, FhirError, notFound } from '../fhir/outcome.js';
import { jsonBody } from '../nul-characters.js';
import type { Services } from '../services.js';
import type { Queryable } from '../store/db.js';

/**
 * Which registered client an MLLP connection acts for. MLLP has no tokens: the administrator maps a
 * sending facility (MSH-4) and optionally a sending application (MSH-3) to a client, and may pin the
 * mapping to a remote address. A message from a facility/application with no mapping is refused (AR).
 */

export interface MllpSender {
  sendingFacility: string;
  /** '' = any application of the facility. */
  sendingApplication: string;
  clientId: string;
  organizationId: string;
  remoteAddress: string | null;
  created: Date;
}

interface Row {
  sending_facility: string;
  sending_application: string;
  client_id: string;
  organization_id: string;
  remote_address: string | null;
  created: Date;
}

const toSender = (r: Row): MllpSender => ({
  sendingFacility: r.sending_facility, sendingApplication: r.sending_application, clientId: r.client_id,
  organizationId: r.organization_id, remoteAddress: r.remote_address, created: r.created,
});

/** The client a mapping names, as the listener needs it (read with the mapping, in the same statement). */
export interface MappedClient {
  id: string;
  organizationId: string;
  scope: string;
  disabled: boolean;
}

/** The mapping for MSH-4 / MSH-3 and its client (undefined when the client is gone), in one look-up. */
export async function findMllpSenderAndClient(
  db: Queryable, facility: string, application: string,
): Promise<{ mapping: MllpSender; client?: MappedClient } | undefined> {
  const { rows } = await db.query<Row & { c_id: string | null; c_organization: string | null; c_scope: string | null; c_disabled: boolean | null }>(`SELECT s.*, c.id AS c_id, c.organization_id AS c_organization, c.scope AS c_scope, c.disabled_at IS NOT NULL AS c_disabled
     FROM mllp_sender s LEFT JOIN client c ON c.id = s.client_id
     WHERE s.sending_facility = $1 AND s.sending_application IN ($2, '')
     ORDER BY s.sending_application DESC LIMIT 1`,
    [facility, application]);
  const row = rows[0];
  if (!row) return undefined;
  const client = row.c_id === null ? undefined : { id: row.c_id, organizationId: row.c_organization!, scope: row.c_scope!, disabled: row.c_disabled === true };
  return { mapping: toSender(row), ...(client ? { client } : {}) };
}

const describe = (s: MllpSender) => ({
  sending_facility: s.sendingFacility, sending_application: s.sendingApplication, client_id: s.clientId,
  organization: `Organization/${s.organizationId}`, ...(s.remoteAddress ? { remote_address: s.remoteAddress } : {}), created: s.created,
});

const TEXT = /^[\x20-\x7e]{1,180}$/;

/** `/admin/mllp-senders`: POST {sending_facility, sending_application?, client_id, remote_address?}, GET, DELETE. */
export function mllpSenderRoutes(services: Services): express.Router {
  const router = express.Router();
  router.use('/admin/mllp-senders', requireAdmin(services), jsonBody({ limit: '16kb' }));

  router.post('/admin/mllp-senders', async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const facility = body.sending_facility;
    const application = body.sending_application ?? '';
    const clientId = body.client_id;
    const remote = body.remote_address;
    if (typeof facility !== 'string' || !TEXT.test(facility)) throw badRequest('sending_facility (MSH-4.1, printable ASCII) is required', ['sending_facility']);
    if (typeof application !== 'string' || (application && !TEXT.test(application))) throw badRequest('sending_application (MSH-3.1) must be printable ASCII', ['sending_application']);
    if (typeof clientId !== 'string') throw badRequest('client_id is required', ['client_id']);
    if (remote !== undefined && (typeof remote !== 'string' || !/^[0-9a-fA-F:.]{2,45}$/.test(remote))) throw badRequest('remote_address must be an IP address', ['remote_address']);
    const client = await services.auth.clients.find(clientId);
    if (!client || client.disabled) throw new FhirError(422, { code: 'not-found', diagnostics: `Client ${clientId} is not registered or is disabled`, expression: ['client_id'] });
    const { rows } = await services.db.query<Row>(
      `INSERT INTO mllp_sender (sending_facility, sending_application, client_id, organization_id, remote_address)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING *`,
      [facility, application, client.id, client.organizationId, remote ?? null],
    );
    if (!rows[0]) throw conflict(`${facility}/${application || '*'} is already mapped; delete it first`);
    res.status(201).json(describe(toSender(rows[0])));
  });

  router.get('/admin/mllp-senders', async (_req, res) => {
    const { rows } = await services.db.query<Row>('SELECT * FROM mllp_sender ORDER BY sending_facility, sending_application');
    res.json(rows.map((r) => describe(toSender(r))));
  });

  router.delete('/admin/mllp-senders/:facility', async (req, res) => {
    const application = typeof req.query.sending_application === 'string' ? req.query.sending_application : '';
    const { rowCount } = await services.db.query('DELETE FROM mllp_sender WHERE sending_facility = $1 AND sending_application = $2', [
      String(req.params.facility), application,
    ]);
    if (!rowCount) throw notFound(`${req.params.facility}/${application || '*'} is not mapped`);
    res.status(204).end();
  });
  return router;
}
