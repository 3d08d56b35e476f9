import { MappingRegistry } from '../mapping/registry.js';
import { checkHl7Path } from './hl7v2/source.js';

let registry: MappingRegistry | undefined;

/** The mapping files under mappings/, loaded and checked once (the gateway does it at start). */
export function mappings(): MappingRegistry {
  registry ??= MappingRegistry.load({
    hl7v2: checkHl7Path,
    table: (path) => (path.trim() ? undefined : 'a column name is required'),
  });
  return registry;
}
