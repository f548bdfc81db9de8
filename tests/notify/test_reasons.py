"""The ack reasons offered for an alert fit its analyte (``service.notify.reasons``)."""

from __future__ import annotations

import pytest

from service.notify.ack_tokens import ACK_ACTIONS
from service.notify.reasons import actions_for


@pytest.mark.parametrize(
    ("analyte", "offered", "withheld"),
    [
        # A low calcium is not treated with IV phosphate.
        ("calcium", {"iv-calcium"}, {"iv-phosphate"}),
        # Ionized and lab-corrected calcium are calcium too.
        ("ionized_calcium", {"iv-calcium"}, {"iv-phosphate"}),
        ("corrected_calcium", {"iv-calcium"}, {"iv-phosphate"}),
        # A low phosphate is not treated with IV calcium.
        ("phosphate", {"iv-phosphate"}, {"iv-calcium"}),
        # The order-time advisory is about neither mineral yet.
        ("advisory", set(), {"iv-phosphate", "iv-calcium"}),
        # An unknown or missing analyte offers no IV replacement.
        ("", set(), {"iv-phosphate", "iv-calcium"}),
        (None, set(), {"iv-phosphate", "iv-calcium"}),
    ],
)
def test_reasons_fit_the_analyte(
    analyte: str | None, offered: set[str], withheld: set[str]
) -> None:
    actions = actions_for(analyte)
    assert offered <= set(actions) and not withheld & set(actions)
    # Every reason that is no mineral replacement is offered for every alert, in order.
    general = [k for k in ACK_ACTIONS if k not in {"iv-phosphate", "iv-calcium"}]
    assert [k for k in actions if k in general] == general
    assert all(actions[k] == ACK_ACTIONS[k] for k in actions)
