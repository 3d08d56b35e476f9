import type { Caller } from '../fhir/caller.js';
import type { FhirService } from '../fhir/service.js';
import { log } from '../logger.js';
import type { Queryable } from '../store/db.js';
import { TOPICS, topicResource } from './topics.js';

/**
 * Writes the gateway's SubscriptionTopics as Basic resources (shared directory data, readable by every
 * client: `Basic?code=SubscriptionTopic`), when they are missing or differ from the definitions.
 */
export async function publishTopics(fhir: FhirService, db: Queryable, caller: Caller): Promise<void> {
  for (const topic of TOPICS) {
    const resource = topicResource(topic);
    const { rows } = await db.query<{ json: string }>(
      `SELECT content::text AS json FROM resource WHERE resource_type = 'Basic' AND id = $1 AND NOT deleted`, [resource.id]);
    const stored = rows[0] && (JSON.parse(rows[0].json) as typeof resource);
    if (stored && JSON.stringify([stored.extension, stored.code]) === JSON.stringify([resource.extension, resource.code])) continue;
    try {
      await fhir.update(caller, 'Basic', resource.id!, resource);
    } catch (err) {
      log.warn({ topic: topic.url, err: (err as Error).message }, 'SubscriptionTopic not published');
    }
  }
}
