"""Read models of the API and the pages, one module per page or resource.

- ``alerts``: alert documents, lists, detail with deliveries, the manual resolve.
- ``dead_letters``: dead-letter documents and reprocessing through the pipeline.
- ``patients``: patient refs (opaque row ids), lookup, orders and derived exposures.
- ``episodes``: each at-risk iron episode with its monitoring plan, from ``alerts.monitoring``.
- ``worklist``: patients at risk now and their monitoring checks.
- ``timeline``: one patient's results, orders, exposures, alerts and episodes over time.
- ``exposure_gauges``: the active-exposure and at-risk gauges refreshed on /metrics.
- ``alert_gauges``: alert actions of any process, open alerts and silences, on /metrics.

Synchronous SQLAlchemy: the routes run these in worker threads (each blocks on the database).
Patients are addressed by ``ref``, the row id of the ``patients`` table, so no MRN ever appears
in a URL. The clinical decisions (exposures, episodes, the monitoring schedule) are the pure
core's; these modules only read rows and shape documents.
"""
