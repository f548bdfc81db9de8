"""Dead letters can be reprocessed after a fix: a unit the lab catalog did not know is added
to a copy of the catalog, and the same raw message then goes through and is stored."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import text

from service.ingest.pipeline import Incoming, Outcome
from service.runtime.settings import default_config_path
from tests.fuzz.conftest import make_app

# A phosphate result in a unit spelling no catalog knows ("MGPERDL").
ODD_UNIT_ORU = (
    b"MSH|^~\\&|LAB|GENERAL HOSPITAL|LABSENTINEL|GENERAL HOSPITAL|20250110080000||"
    b"ORU^R01^ORU_R01|ODDUNIT1|P|2.5.1\r"
    b"PID|1||MRN77777777^^^GH^MR||SYNTHETIC^ALPHA||19600101|F\r"
    b"PV1|1|I|4W^101^A^GH\r"
    b"OBR|1|ORD1|FIL1|PHOS^Phosphate^L|||20250110070000\r"
    b"OBX|1|NM|2777-1^Phosphate^LN||2.9|MGPERDL|2.5-4.5|N|||F|||20250110070000\r"
)


def test_unknown_unit_dead_letter_is_stored_after_the_catalog_learns_it(
    sqlite_url: str, tmp_path: Path
) -> None:
    first = make_app(sqlite_url)
    try:
        result = first.pipeline.process(Incoming(ODD_UNIT_ORU, "kafka", "oru", 0, 42))
    finally:
        first.close()
    assert result.outcome is Outcome.DEAD_LETTER and result.error_class == "unit"

    # The fix: a site config folder whose lab catalog accepts the spelling.
    config_dir = tmp_path / "site"
    config_dir.mkdir()
    shutil.copy(default_config_path(), config_dir / "labsentinel.toml")
    labs = (default_config_path().parent / "labs.toml").read_text()
    marker = '[analytes.phosphate.units]\n"mg/dL" = 1.0\n'
    assert marker in labs
    (config_dir / "labs.toml").write_text(labs.replace(marker, marker + '"MGPERDL" = 1.0\n'))

    fixed = make_app(sqlite_url, config_dir / "labsentinel.toml")
    try:
        assert fixed.clinical.labs.understands("phosphate", "MGPERDL")
        with fixed.engine.connect() as connection:
            raw, reason = connection.execute(
                text('SELECT raw, reason FROM dead_letters WHERE "offset" = 42')
            ).one()
        assert reason  # inspectable: why it was rejected
        again = fixed.pipeline.process(Incoming(bytes(raw), source="reprocess"))
        assert again.outcome is Outcome.STORED
        with fixed.engine.connect() as connection:
            stored = connection.execute(
                text("SELECT count(*) FROM lab_results WHERE analyte = 'phosphate'")
            ).scalar_one()
        assert stored == 1
    finally:
        fixed.close()
