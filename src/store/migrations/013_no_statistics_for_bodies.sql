-- No plan depends on the distribution of whole resource bodies, AuditEvent contents or raw messages:
-- nothing filters on them by value. ANALYZE still sampled them, detoasting up to 30,000 bodies per table,
-- most of its time; on the embedded store that time holds the one session every request waits for.
ALTER TABLE resource ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE resource_version ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE audit_event ALTER COLUMN content SET STATISTICS 0;
ALTER TABLE ingest_message ALTER COLUMN raw SET STATISTICS 0;
