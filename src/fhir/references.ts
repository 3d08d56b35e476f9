/** Rewrites every `reference` in a resource that a map knows (urn:uuid: fullUrls of a transaction). */
export function rewriteReferences<T>(value: T, map: Map<string, string>): T {
  if (Array.isArray(value)) return value.map((v) => rewriteReferences(v, map)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    out[key] = key === 'reference' && typeof child === 'string' && map.has(child) ? map.get(child) : rewriteReferences(child, map);
  }
  return out as T;
}

/** Every reference string in a resource, for resolving conditional references (`Patient?identifier=…`). */
export function collectReferences(value: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) value.forEach((v) => collectReferences(v, found));
  else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      if (key === 'reference' && typeof child === 'string') found.add(child);
      else collectReferences(child, found);
    }
  }
  return found;
}
