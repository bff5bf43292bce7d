/**
 * GET /metrics: Prometheus text format. Outside /api, so a scraper needs no API token (the
 * output holds counters, pool names and BMC addresses, never secrets).
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics/registry.js';

export function metricsRoutes(app: FastifyInstance, metrics: Metrics): void {
  // Timed by route pattern (fastify's routeOptions.url), never the raw URL: bounded labels.
  app.addHook('onResponse', async (req, reply) => {
    metrics.observeHttp(req.method, req.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get('/metrics', { config: { access: 'public' } }, async (_req, reply) => {
    const text = await metrics.render();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
