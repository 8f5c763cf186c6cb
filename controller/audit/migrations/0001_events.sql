-- Every state change of every Position, append-only. Money is NUMERIC, never float.
CREATE TABLE events (
    event_id          uuid PRIMARY KEY,
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
    recorded_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_position_time ON events (position_uid, occurred_at);
CREATE INDEX events_type_time ON events (type, occurred_at);

-- Append-only is enforced here, not by convention.
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only (% refused)', TG_OP;
END;
$$;

CREATE TRIGGER events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();
