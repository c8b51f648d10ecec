"""What two deployables exchange — the ground every other package may stand on.

* ``contracts.lifecycle`` — the order statuses and legal transitions (one definition);
* ``contracts.stl`` — STL model validation and measurement (the gateway checks uploads with it,
  the legacy stand-in prices with it);
* ``contracts.materials`` — the material names an order or a quote may name;
* ``contracts.order_input`` — validation of a new order (MES API, CRM envelope);
* ``contracts.crm_envelope`` — the CRM → MES queue message (versioned);
* ``contracts.crm_status`` — the relay → CRM delivery status (versioned).
* ``contracts.crm_queue`` — what every CRM queue consumer shares: the dead-letter entry, the
  outcome counts;
* ``contracts.order_events`` — the MES sidecar's order-change events (versioned; one writer,
  one parser).
* ``contracts.json_file`` — how the key CLI's files (API keys, webhook secrets) are written and
  re-read: atomic replace, 0600, re-read when ``(mtime, inode)`` changes.
* ``contracts.webhook_secrets`` — the per-partner webhook signing secrets file: the key CLI
  (gateway) creates and rotates, the pricing workers sign.

Imports only the standard library and small libraries (numpy, numpy-stl); never a deployable
(``gateway``, ``sidecar``, ``legacy_adapters``) nor the simulator (``legacy_sim``). A test over
the import graph (``tests/unit/test_import_layers.py``) keeps it so.
"""
