-- Consent decisions are now written into each statement (src/consent/sql.ts) so that the planner joins
-- consent_grant by its index instead of calling a function per row. The function forms are retired so
-- that the rule lives in one place.
DROP FUNCTION consent_permit(text, text, text, text, integer, text, text);
DROP FUNCTION consent_deny(text, text, text, text, integer, text, text);
DROP FUNCTION consent_grant_applies(consent_grant, text, text, text);
