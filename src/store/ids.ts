import { v7 } from 'uuid';

/**
 * The id of something the gateway creates (a resource posted without one, an AuditEvent): a version 7
 * UUID, whose first 48 bits are the time of creation. Ids made one after another sort together, so the
 * key indexes they go into (resource and its versions and search rows, audit_event) grow at their right
 * edge; random ids put each new key on a random page of an index that, on a busy gateway, has long
 * outgrown memory. The time in the id is no more than the resource's own meta.lastUpdated tells.
 */
export const newId = (): string => v7();
