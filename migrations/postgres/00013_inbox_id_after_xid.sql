-- +goose Up
-- An inbox row takes its id after its transaction has a transaction id, so the applier
-- can tell when every id below a sequence value belongs to a finished transaction (the
-- claim floor, store/floor.go): the default asks for the transaction's id first
-- (pg_current_xact_id() assigns one when the transaction has none yet), then takes the
-- next id. With the plain nextval default a multi-row insert took its first id before
-- its transaction id, and a transaction could hold an id below a value the applier read
-- while not yet being visible as running. The sequence hands out one id at a time
-- (CACHE 1, the default, pinned here): a session's cached ids would be taken after the
-- value the applier reads.
ALTER SEQUENCE inbox_id_seq CACHE 1;
ALTER TABLE inbox ALTER COLUMN id SET DEFAULT
    CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('inbox_id_seq'::regclass) END;

-- +goose Down
ALTER TABLE inbox ALTER COLUMN id SET DEFAULT nextval('inbox_id_seq'::regclass);
