-- An AuditEvent's content is only ever stored, returned and hashed whole: nothing queries inside it. As
-- jsonb every insert built a binary tree from the text (about 2 KB for a notification's) and every read
-- and every sealing turned it back into text. As json the text is checked and kept as sent. Existing
-- rows keep jsonb's text form, which is the text their chain links were computed over.
ALTER TABLE audit_event ALTER COLUMN content TYPE json USING content::json;
