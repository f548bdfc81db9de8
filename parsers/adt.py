"""ADT patient merges (A40, A18, A34, A36, A39) -> PatientMerge.

A merge says that records kept under prior identifiers (MRG-1) belong to the surviving
patient (PID-3). LabSentinel moves exposures, results and open alerts to the surviving
identifier, so a merge never hides an interaction (the product requirements).

Structures read (HL7 v2.5 chapter 3; segments not named here are skipped):

- ADT^A40 / ADT^A39 (merge patient - patient identifier list / merge person): EVN, then one
  or more groups ``PID [PD1] MRG [PV1]``;
- ADT^A18 / ADT^A34 / ADT^A36 (merge patient information / patient id only / id and account):
  EVN, PID, [PD1], MRG, [PV1].

All are read the same way: every PID starts a group, the MRG segments up to the next PID
belong to it. ADT^A41 (merge account) does not change who a patient is and stays Ignored.

Identifier choice is ``parsers.patient.choose_identifier`` - the configured identifier types
and authorities - applied to PID-3 (surviving) and to each MRG-1 (prior), so a prior id is
exactly the id that earlier messages for that patient were stored under.

Choices:

- ``PatientMerge`` has one surviving patient. A message whose groups name different surviving
  identifiers raises ParseError (PID[n], PID-3): it goes to the dead-letter store for a person
  to apply, rather than being half applied.
- A prior identifier is the pair MRG-1.1 + MRG-1.4 (``prior_ids`` and ``prior_authorities``,
  same order): the same number from another authority is another patient. Pairs equal to the
  surviving patient's are dropped, duplicates kept once (first order). A merge left with no
  prior identifier is Ignored ("merge names no other identifier").

Errors raise ParseError naming segment (``PID[n]`` / ``MRG[n]``, n = the group) and field;
the text never contains field values.
"""

from __future__ import annotations

from parsers.config import ParserConfig
from parsers.encoding import Delimiters, field
from parsers.errors import ParseError
from parsers.events import Ignored, MessageHeader, PatientMerge
from parsers.patient import choose_identifier, parse_patient

MERGE_TYPES = ("ADT^A40", "ADT^A18", "ADT^A34", "ADT^A36", "ADT^A39")


def _name(segment: str, fs: str) -> str:
    return segment.split(fs, 1)[0].strip().upper()


_Group = tuple[list[str], list[list[str]], list[str] | None]  # PID, its MRGs, its first PV1


def _groups(segments: list[str], fs: str) -> list[_Group]:
    """(PID fields, MRG fields list, first PV1 fields or None) per PID, in message order.

    Raises ParseError when an MRG comes before any PID.
    """
    groups: list[_Group] = []
    mrg_seen = 0
    for seg in segments[1:]:
        name = _name(seg, fs)
        if name == "PID":
            groups.append((seg.split(fs), [], None))
        elif name == "MRG":
            mrg_seen += 1
            if not groups:
                raise ParseError("MRG segment before any PID", f"MRG[{mrg_seen}]", "MRG-1")
            groups[-1][1].append(seg.split(fs))
        elif name == "PV1" and groups and groups[-1][2] is None:
            pid, mrgs, _ = groups[-1]
            groups[-1] = (pid, mrgs, seg.split(fs))
    return groups


def parse_merge(
    segments: list[str], d: Delimiters, header: MessageHeader, config: ParserConfig
) -> PatientMerge | Ignored:
    """Parse a merge message (see the module doc).

    Raises ParseError naming PID-3 when there is no PID or a PID has no accepted identifier or
    the groups disagree on the surviving patient, and naming MRG-1 when a group has no MRG, an
    MRG precedes every PID, or an MRG-1 has no accepted identifier.
    """
    groups = _groups(segments, d.field)
    if not groups:
        raise ParseError("missing PID segment", "PID", "PID-3")
    surviving = None
    prior: list[tuple[str, str]] = []  # (id, authority): one number from two authorities is two
    for n, (pid, mrgs, pv1) in enumerate(groups, start=1):
        try:
            patient = parse_patient(pid, pv1, d, config)
        except ParseError as err:
            raise ParseError(err.reason, f"PID[{n}]", "PID-3") from None
        if surviving is None:
            surviving = patient
        elif (patient.id, patient.authority) != (surviving.id, surviving.authority):
            raise ParseError("merge names different surviving patients", f"PID[{n}]", "PID-3")
        if not mrgs:
            raise ParseError("missing MRG segment", f"MRG[{n}]", "MRG-1")
        for mrg in mrgs:
            try:
                ident, authority, _type = choose_identifier(field(mrg, 1), d, config)
            except ParseError:
                raise ParseError(
                    "no accepted prior patient identifier", f"MRG[{n}]", "MRG-1"
                ) from None
            pair = (ident, authority)
            if pair != (surviving.id, surviving.authority) and pair not in prior:
                prior.append(pair)
    assert surviving is not None  # groups is non-empty
    if not prior:
        return Ignored(header, "merge names no other identifier")
    return PatientMerge(
        header=header,
        surviving=surviving,
        prior_ids=tuple(ident for ident, _ in prior),
        prior_authorities=tuple(authority for _, authority in prior),
    )
