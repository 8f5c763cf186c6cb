-- Monthly partitions for events, a fills table, and a per-position summary.
--
-- A partitioned table's unique keys must include the partition key, but an event's identity is its id
-- alone (a re-planned event has the same id and a later time). So uniqueness lives in event_ids, and
-- the store inserts an event only when inserting its id into event_ids succeeded (one statement).

ALTER TABLE events RENAME TO events_v1;
ALTER INDEX events_position_time RENAME TO events_v1_position_time;
ALTER INDEX events_type_time RENAME TO events_v1_type_time;

CREATE TABLE event_ids (
    event_id    uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL
);

CREATE TABLE events (
    event_id          uuid NOT NULL,
    position_uid      uuid,
    namespace         text NOT NULL,
    name              text NOT NULL,
    account           text,
    symbol            text,
    type              text NOT NULL,
    phase_before      text,
    phase_after       text,
    client_order_id   text,
    exchange_order_id text,
    amount            numeric,
    price             numeric,
    message           text NOT NULL DEFAULT '',
    detail            jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at       timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    epoch             bigint,
    replica           text,
    seq               bigint GENERATED ALWAYS AS IDENTITY  -- insertion order, for events of the same instant
) PARTITION BY RANGE (occurred_at);

-- Rows outside every monthly partition land here rather than failing the write.
CREATE TABLE events_default PARTITION OF events DEFAULT;

CREATE INDEX events_position_time ON events (position_uid, occurred_at);
CREATE INDEX events_type_time ON events (type, occurred_at);
CREATE INDEX events_account_time ON events (account, occurred_at);
CREATE INDEX events_name_time ON events (namespace, name, occurred_at);

-- The month containing ts gets its partition; idempotent.
CREATE FUNCTION warden_ensure_partition(ts timestamptz) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    month_start date := date_trunc('month', ts AT TIME ZONE 'UTC')::date;
    part text := format('events_%s', to_char(month_start, 'YYYY_MM'));
BEGIN
    IF to_regclass(part) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
            part, month_start::timestamp AT TIME ZONE 'UTC',
            (month_start + interval '1 month')::timestamp AT TIME ZONE 'UTC');
    END IF;
    RETURN part;
END;
$$;

SELECT warden_ensure_partition(now() - interval '1 month');
SELECT warden_ensure_partition(now());
SELECT warden_ensure_partition(now() + interval '1 month');
SELECT warden_ensure_partition(now() + interval '2 month');

INSERT INTO event_ids (event_id, occurred_at) SELECT event_id, occurred_at FROM events_v1;
INSERT INTO events (event_id, position_uid, namespace, name, account, symbol, type, phase_before, phase_after,
                    client_order_id, exchange_order_id, amount, price, message, detail, occurred_at, recorded_at)
SELECT event_id, position_uid, namespace, name, account, symbol, type, phase_before, phase_after,
       client_order_id, exchange_order_id, amount, price, message, detail, occurred_at, recorded_at
FROM events_v1;
DROP TABLE events_v1;

-- Append-only is enforced by the database: row triggers on every partition (inherited), plus TRUNCATE.
CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
CREATE TRIGGER event_ids_append_only
    BEFORE UPDATE ON event_ids
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

-- Retention: whole months are detached and dropped (row DELETEs stay refused). See docs/audit-events.md.
CREATE FUNCTION warden_drop_events_before(cutoff date) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.relname AS name
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
          AND to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month' <= cutoff
    LOOP
        EXECUTE format('ALTER TABLE events DETACH PARTITION %I', part.name);
        EXECUTE format('DROP TABLE %I', part.name);
        RETURN NEXT part.name;
    END LOOP;
    ALTER TABLE event_ids DISABLE TRIGGER event_ids_append_only;
    DELETE FROM event_ids WHERE occurred_at < cutoff;
    ALTER TABLE event_ids ENABLE TRIGGER event_ids_append_only;
END;
$$;

-- Every exchange trade of a Warden order, once (Binance trade ids are unique per symbol).
CREATE TABLE fills (
    account           text NOT NULL,
    symbol            text NOT NULL,
    trade_id          text NOT NULL,
    position_uid      uuid,
    namespace         text NOT NULL,
    name              text NOT NULL,
    client_order_id   text,
    exchange_order_id text NOT NULL,
    side              text NOT NULL,
    amount            numeric NOT NULL,
    price             numeric NOT NULL,
    fee               numeric NOT NULL,
    fee_asset         text,
    realized_pnl      numeric NOT NULL,
    maker             boolean,
    traded_at         timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, symbol, trade_id)
);
CREATE INDEX fills_position ON fills (position_uid, traded_at);
CREATE INDEX fills_account_time ON fills (account, traded_at);

CREATE TRIGGER fills_append_only
    BEFORE UPDATE OR DELETE ON fills
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

-- One row per position: where it stands and what it made, from the events and the fills.
CREATE VIEW position_summary AS
SELECT e.position_uid,
       e.namespace,
       e.name,
       e.account,
       e.symbol,
       e.first_event_at,
       e.last_event_at,
       e.events,
       e.phase,
       e.exit_reason,
       coalesce(f.realized_pnl, 0) - coalesce(f.fees, 0) AS net_pnl,
       coalesce(f.fees, 0) AS fees,
       coalesce(f.fills, 0) AS fills
FROM (
    SELECT position_uid,
           min(namespace) AS namespace,
           min(name) AS name,
           min(account) AS account,
           min(symbol) AS symbol,
           min(occurred_at) AS first_event_at,
           max(occurred_at) AS last_event_at,
           count(*) AS events,
           (array_agg(phase_after ORDER BY occurred_at DESC, recorded_at DESC)
                FILTER (WHERE phase_after IS NOT NULL))[1] AS phase,
           (array_agg(detail ->> 'exitReason' ORDER BY occurred_at DESC)
                FILTER (WHERE detail ? 'exitReason' AND detail ->> 'exitReason' IS NOT NULL))[1] AS exit_reason
    FROM events
    WHERE position_uid IS NOT NULL
    GROUP BY position_uid
) e
LEFT JOIN (
    SELECT position_uid, sum(realized_pnl) AS realized_pnl, sum(fee) AS fees, count(*) AS fills
    FROM fills GROUP BY position_uid
) f USING (position_uid);
