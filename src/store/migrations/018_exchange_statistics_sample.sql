-- The exchange's tables grow by tens of thousands of rows a minute in a fan-out of notifications, and are
-- analysed as they grow. Their statements find rows by keys (delivery, outbox, AuditEvent ids, a
-- patient's or a period's AuditEvents): their plans depend on the tables' sizes, not on the finer shape
-- of their values. A tenth of the usual sample (3,000 rows) keeps those plans and makes each ANALYZE
-- of them a tenth as long (880 against 63 ms for 35,000 AuditEvents of notifications, whose rows of about
-- 2 KB were copied whole into the sample). The search tables keep the full sample: a search's plan does
-- depend on how common a code or a value is.
DO $$
DECLARE
  col record;
BEGIN
  FOR col IN
    SELECT a.attrelid::regclass AS tbl, a.attname FROM pg_attribute a
    WHERE a.attrelid IN ('audit_event'::regclass, 'delivery'::regclass, 'outbox'::regclass)
      AND a.attnum > 0 AND NOT a.attisdropped AND (a.attstattarget IS NULL OR a.attstattarget < 0)
  LOOP
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS 10', col.tbl, col.attname);
  END LOOP;
END $$;
