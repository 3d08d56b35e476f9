/**
 * Combining the parts of one resource made from several places (the rows of a care plan, the OBX
 * segments of one observation): objects merge element by element, lists keep every distinct element,
 * and two different values for the same single element are a conflict, reported with its path.
 */

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => Object.hasOwn(b, k) && sameValue(a[k], b[k]));
  }
  return false;
}

/** Merges `from` into `into` (in place). Returns the path of the first conflict, or undefined. */
export function mergeInto(into: Json, from: Json, path = ''): string | undefined {
  for (const [key, value] of Object.entries(from)) {
    const here = path ? `${path}.${key}` : key;
    const current = into[key];
    if (current === undefined) {
      into[key] = value;
    } else if (Array.isArray(current) && Array.isArray(value)) {
      for (const item of value) if (!current.some((c) => sameValue(c, item))) current.push(item);
    } else if (isObject(current) && isObject(value)) {
      const conflict = mergeInto(current, value, here);
      if (conflict) return conflict;
    } else if (!sameValue(current, value)) {
      return here;
    }
  }
  return undefined;
}

/**
 * The message's version of a resource applied over the stored one, element by element at the top level
 * (HL7 update semantics: a field not sent leaves the stored value; `""` deletes it).
 */
export function overlayTopLevel(stored: Json, incoming: Json, deletions: readonly string[]): Json {
  // Built without `delete`, which would turn the resource into a slow dictionary object for the validator.
  const result: Json = {};
  for (const [key, value] of Object.entries(stored)) {
    if (key === 'meta' || deletions.includes(key)) continue;
    result[key] = Object.hasOwn(incoming, key) ? incoming[key] : value;
  }
  for (const [key, value] of Object.entries(incoming)) {
    if (!Object.hasOwn(result, key) && !deletions.includes(key)) result[key] = value;
  }
  return result;
}
