import express from 'express';
import type { Services } from '../services.js';
import { clientAdminRoutes } from './client-admin.js';
import { tokenRoutes } from './token-endpoint.js';

export function authRoutes(services: Services): express.Router {
  const router = express.Router();
  router.use(tokenRoutes(services));
  router.use(clientAdminRoutes(services));
  return router;
}
