import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Request } from 'express';
import { requireAdmin } from '../auth/middleware.js';
import { badRequest, conflict, notFound } from '../fhir/outcome.js';
import { oneOf, pageOf } from '../admin-query.js';
import type { Services } from '../services.js';
import { DELIVERY_KINDS, DELIVERY_STATUSES, getDelivery, listDeliveries, replayDead, type DeliveryFilter } from './delivery-admin.js';

/**
 * Administrator routes of the exchange: `/admin/deliveries` (notifications by subscription, status and
 * kind; a dead letter is replayed with POST /admin/deliveries/{id}/replay) and `/admin/queues`, the
 * BullMQ dashboard.
 */
export function exchangeAdminRoutes(services: Services): express.Router {
  const router = express.Router();
  router.use('/admin/deliveries', requireAdmin(services));

  router.get('/admin/deliveries', async (req, res) => {
    res.json(await listDeliveries(services.db, deliveryFilter(req)));
  });
  router.get('/admin/deliveries/:id', async (req, res) => {
    const delivery = await getDelivery(services.db, deliveryId(req));
    if (!delivery) throw notFound(`Delivery ${req.params.id} is not known`);
    res.json(delivery);
  });
  router.post('/admin/deliveries/:id/replay', async (req, res) => {
    const id = deliveryId(req);
    const ref = await replayDead(services.db, id);
    if (!ref) {
      if (!(await getDelivery(services.db, id))) throw notFound(`Delivery ${id} is not known`);
      throw conflict(`Delivery ${id} is not a dead letter; only dead letters are replayed`);
    }
    await services.exchange.enqueueDeliveries([ref]);
    res.status(202).json(await getDelivery(services.db, id));
  });

  const board = new ExpressAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({
    queues: [services.exchange.changes, services.exchange.deliveries].map((q) => new BullMQAdapter(q as never, { readOnlyMode: false })),
    serverAdapter: board as never,
    options: { uiConfig: { boardTitle: 'renkei queues' } },
  });
  router.use('/admin/queues', requireAdmin(services), board.getRouter());
  return router;
}

function deliveryId(req: Request): number {
  const id = String(req.params.id);
  if (!/^\d{1,15}$/.test(id)) throw badRequest(`Delivery id must be a number, got "${id}"`);
  return Number(id);
}

function deliveryFilter(req: Request): DeliveryFilter {
  const q = (name: string) => (typeof req.query[name] === 'string' ? (req.query[name] as string) : undefined);
  const status = oneOf('status', q('status'), DELIVERY_STATUSES);
  const kind = oneOf('kind', q('kind'), DELIVERY_KINDS);
  const subscription = q('subscription')?.replace(/^Subscription\//, '');
  return { subscriptionId: subscription, status, kind, ...pageOf(q('_count'), q('_offset'), 1000) };
}
