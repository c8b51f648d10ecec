-- Legacy MES schema. Applied idempotently at start-up under an advisory lock.
-- Deliberately legacy: ONE table for active and archived orders, and no index on
-- status or created_at, so the operators' list query scans the whole table.

CREATE TABLE IF NOT EXISTS orders (
    id                bigserial PRIMARY KEY,
    source            text        NOT NULL CHECK (source IN ('b2b', 'crm')),
    external_ref      text        NULL,
    partner_id        text        NULL,
    customer          text        NOT NULL,
    material          text        NOT NULL,
    quantity          integer     NOT NULL CHECK (quantity > 0),
    model_name        text        NOT NULL,
    model_sha256      text        NULL,
    price             numeric(12, 2) NULL,
    status            text        NOT NULL DEFAULT 'SUBMITTED' CHECK (status IN (
                          'SUBMITTED', 'PRICE_CALCULATED', 'MANUFACTURING_APPROVED',
                          'MANUFACTURING_STARTED', 'MANUFACTURING_COMPLETED', 'SHIPPED',
                          'CLOSED', 'CANCELLED')),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    status_changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_source_external_ref_key UNIQUE (source, external_ref)
);

-- Audit trail, written in the same transaction as every status change
-- (old_status is NULL for the creation). No index on order_id: legacy.
CREATE TABLE IF NOT EXISTS order_status_history (
    id          bigserial PRIMARY KEY,
    order_id    bigint      NOT NULL REFERENCES orders (id),
    old_status  text        NULL,
    new_status  text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per price calculation; finished_at IS NULL while it runs, so a DB
-- probe can count calculations in progress across all MES instances.
CREATE TABLE IF NOT EXISTS price_calculations (
    id            bigserial PRIMARY KEY,
    instance_id   text        NOT NULL,
    model_sha256  text        NOT NULL,
    material      text        NOT NULL,
    triangles     integer     NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz NULL,
    outcome       text        NULL CHECK (outcome IN ('success', 'failure')),
    order_id      bigint      NULL REFERENCES orders (id)
);
