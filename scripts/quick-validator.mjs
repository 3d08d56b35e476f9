// The quick structure validator: the same schema as the complete one, accepting exactly the same
// resources, but it stops at the first error and makes no messages, so a valid resource costs less.
// Refused resources are validated again by the complete validator, which reports why.
// Used by build-schema-validator.mjs; test/validation/quick.test.ts checks that both validators agree.

/**
 * How the quick validator's ajv options differ from the complete one's:
 *   - allErrors false: the first failing keyword ends validation;
 *   - messages false: errors (never read) carry no message text;
 *   - unicode false: minLength counts UTF-16 units instead of code points. The schema's only length rule
 *     is minLength 1 (no empty strings), and a string has a code point exactly when it has a unit;
 *   - and dropCallContexts below, on the generated code.
 */
const QUICK_OPTIONS = { allErrors: false, messages: false, unicode: false };

/** ajv warns that `unicode` is deprecated; the quick validator uses it knowingly (see QUICK_OPTIONS). */
const logger = {
  log: console.log.bind(console),
  warn: (...args) => {
    if (!String(args[0]).startsWith('DEPRECATED: option unicode.')) console.warn(...args);
  },
  error: console.error.bind(console),
};

/** What every validate function of the standalone code starts with (ajv 8). */
const SIGNATURE = /\(data, \{instancePath="", parentData, parentDataProperty, rootData=data\}=\{\}\)\{/g;
/**
 * The context ajv passes to a subschema's validate function, `f(x, {instancePath:…, rootData})`: for a
 * property or an array item, or unchanged (the resource type chosen by a discriminator).
 */
const CALL_CONTEXT =
  /, \{(?:instancePath:instancePath\+[^{}()]*?,parentData:[\w$]+,parentDataProperty:[^{}(),]+|instancePath,parentData,parentDataProperty),rootData\}\)/g;

/**
 * Drops the context argument from the quick validator's calls of its subschemas' functions. A callee
 * uses it only for the location of an error (instancePath) and for options the gateway does not set
 * (parentData and parentDataProperty for useDefaults, coerceTypes and removeAdditional; rootData for
 * $data), and the quick validator's errors are never read. Building it (an object and a concatenated
 * path per element) is a good part of what a valid resource costs. Fails the build when ajv's code no
 * longer has the shape this relies on: each name then appears in the functions' signatures only.
 */
export function dropCallContexts(code) {
  const functions = code.match(SIGNATURE)?.length ?? 0;
  const stripped = code.replace(CALL_CONTEXT, ')');
  const uses = (name) => stripped.match(new RegExp(`\\b${name}\\b`, 'g'))?.length ?? 0;
  const leftOver = ['rootData', 'parentData', 'parentDataProperty'].filter((name) => uses(name) !== functions);
  if (!functions || leftOver.length || /, \{instancePath[:,]/.test(stripped)) {
    throw new Error(`ajv's standalone code changed shape (${leftOver.join(', ') || 'calls'}): review dropCallContexts`);
  }
  return stripped;
}

/**
 * The quick validator's standalone code. `generate(options, logger)` makes the standalone code of the
 * schema with the complete validator's ajv options overridden by `options`.
 */
export function quickValidatorCode(generate) {
  return dropCallContexts(generate(QUICK_OPTIONS, logger));
}
