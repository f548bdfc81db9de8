"""Turns clinical events into FeedRecords: control ids, order numbers, timestamp styles."""

from __future__ import annotations

import random

from service.tools.feedgen.catalog import PROVIDERS, Drug
from service.tools.feedgen.hl7 import PatientSegments, Timestamps, oru, rde
from service.tools.feedgen.model import FeedRecord

# (MSH-7 epoch seconds, sequence number, record): sorting gives feed order, ties by creation.
Item = tuple[int, int, FeedRecord]


class RecordBuilder:
    """Renders ORU^R01 and RDE^O11 records; owns the unique MSH-10 and order numbering.

    MSH-10 is "<app prefix><feed token><counter>", e.g. "L3F2A0000042" (12 characters, well
    inside ST 20): unique within a feed and, through the token (a hash of seed and start),
    practically unique across feeds replayed into one database.
    """

    def __init__(
        self,
        rng: random.Random,
        token: str,
        *,
        oru_topic: str,
        rde_topic: str,
        keyed: bool,
    ) -> None:
        self.rng = rng
        self.token = token
        self.oru_topic = oru_topic
        self.rde_topic = rde_topic
        self.keyed = keyed
        self.ts = Timestamps()
        self._counter = 0
        self._give_codes: dict[str, str] = {}

    def _give_code(self, drug: Drug) -> str:
        code = self._give_codes.get(drug.text)
        if code is None:
            code = self._give_codes[drug.text] = drug.give_code
        return code

    def oru(
        self,
        patient: PatientSegments,
        msg_sec: int,
        obs_sec: int,
        panel: str,
        obx_lines: list[str],
        kind: str,
        orders_of: int = 0,
    ) -> Item:
        """An ORU^R01 record; `obx_lines` as for `hl7.oru`.

        Placer and filler order numbers derive from the record's own sequence number, or
        from `orders_of` (the sequence number of the record being corrected).
        """
        rng = self.rng
        offset = rng.random() < 0.5
        self._counter += 1
        n = self._counter
        token = self.token
        o = orders_of or n
        ts = self.ts
        text = oru(
            f"L{token}{n:07d}",
            ts(msg_sec, offset),
            ts(obs_sec, offset),
            patient.pid_ss_first if rng.random() < 0.2 else patient.pid_mr_first,
            patient.pv1,
            f"PL{token}{o:07d}",
            f"FL{token}{o:07d}",
            panel,
            obx_lines,
        )
        key = patient.key if self.keyed else None
        return msg_sec, n, FeedRecord(self.oru_topic, key, text.encode(), kind)

    def rde(
        self,
        *,
        patient: PatientSegments,
        order_sec: int,
        dose_sec: int,
        drug: Drug,
        kind: str,
    ) -> Item:
        rng = self.rng
        offset = rng.random() < 0.5
        self._counter += 1
        n = self._counter
        ts = self.ts
        text = rde(
            control_id=f"P{self.token}{n:07d}",
            order_ts=ts(order_sec, offset),
            dose_ts=ts(dose_sec, offset),
            patient=patient,
            ss_first=rng.random() < 0.2,
            placer=f"PL{self.token}{n:07d}",
            filler=f"FL{self.token}{n:07d}",
            give_code=self._give_code(drug),
            give_amount=drug.amount,
            give_units=drug.units,
            dosage_form=drug.form,
            route=drug.route,
            provider=PROVIDERS[int(rng.random() * len(PROVIDERS))],
        )
        key = patient.key if self.keyed else None
        return order_sec, n, FeedRecord(self.rde_topic, key, text.encode(), kind)
