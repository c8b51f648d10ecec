"""The triggers the hot/cold split puts in place of what inheritance does not give: the foreign
keys to ``orders`` over both tables, and ``(source, external_ref)`` unique over both.

Both are written for a legacy write that meets a batch in flight (mesdb.mover): they wait for the
batch's row lock, then look again with the next statement's snapshot, so they see the order where
the batch put it (tests/integration/mesdb/test_mesdb_split_races.py).

``SECURITY DEFINER`` with a fixed ``search_path`` (every name in them is schema-qualified), owned by
the owner of ``orders``: like a real foreign key's check, they read and lock ``orders`` with the
table owner's rights, not the inserting role's (tests/integration/mesdb/test_mesdb_roles.py).
"""

from mesdb.legacy import ARCHIVE

FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION mesdb.order_must_exist() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN  -- the foreign key to orders(id), over the parent and the archive
    IF NEW.order_id IS NOT NULL THEN
        PERFORM 1 FROM public.orders WHERE id = NEW.order_id FOR KEY SHARE;
        IF NOT FOUND THEN  -- moved by a batch that committed while we waited for its lock: the
            -- next statement's snapshot sees the archived copy
            PERFORM 1 FROM public.orders WHERE id = NEW.order_id FOR KEY SHARE;
        END IF;
        IF NOT FOUND THEN
            RAISE foreign_key_violation USING MESSAGE = format(
                'insert or update on table "%s" violates foreign key: order %s is not in "orders"',
                TG_TABLE_NAME, NEW.order_id);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION mesdb.skip_archived_duplicate() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN  -- (source, external_ref) unique over the parent and the archive: ON CONFLICT DO NOTHING
    IF NEW.external_ref IS NULL OR coalesce(current_setting('mesdb.moving', true), '') = 'on' THEN
        RETURN NEW;
    END IF;
    -- still in the hot table: its unique key arbitrates. The lock waits for a batch moving that
    -- row; once the batch commits the row is gone here, and the next statement sees it archived.
    PERFORM 1 FROM ONLY public.orders o
        WHERE o.source = NEW.source AND o.external_ref = NEW.external_ref FOR KEY SHARE;
    IF FOUND THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM public.{ARCHIVE} a
               WHERE a.source = NEW.source AND a.external_ref = NEW.external_ref) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$;
"""  # noqa: S608 (constant names only)
#: both run as the owner of ``orders`` (given to them by mesdb.ownership), as PostgreSQL's own
#: foreign-key checks do: a legacy role needs no more privileges than it needed before the split
FUNCTION_NAMES = ("mesdb.order_must_exist()", "mesdb.skip_archived_duplicate()")
DUPLICATE_GUARD = "mesdb_skip_archived_duplicate"
FK_TRIGGER = "mesdb_order_must_exist"
