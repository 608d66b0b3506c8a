"""What people read instead of the codes of the voucher room (issue #18): the statuses of programmes, vouchers,
redemptions, claims and claim lines, and the programme's payment mode. Marked with ``N_`` for the catalogs;
:func:`voucher_label` gives one in the page's language (a code without a name reads "Other", never raw).

Used by the programme operator's pages (``programme_*``) and the buyer's voucher pages (``voucher_pages``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from marketplace.web.labels import N_, OTHER

logger = logging.getLogger(__name__)

PROGRAMME_STATUS = {"active": N_("programme open"), "closed": N_("programme closed")}
VOUCHER_STATUS = {
    "applied": N_("applied, awaiting decision"), "granted": N_("voucher granted"),
    "rejected": N_("application rejected"), "revoked": N_("voucher revoked"),
}  # fmt: skip
REDEMPTION_STATUS = {
    "active": N_("reserved"), "settled": N_("settled, to be claimed"), "released": N_("released"),
    "claimed": N_("claimed"), "rejected": N_("rejected by the programme"),
}  # fmt: skip
CLAIM_STATUS = {"open": N_("awaiting decisions"), "decided": N_("decided, awaiting payment"), "paid": N_("claim paid")}
LINE_STATUS = {"pending": N_("to be decided"), "approved": N_("approved"), "rejected": N_("rejected")}
PAYMENT_MODE = {
    "advance": N_("paid on the invoice (the programme pays the platform)"),
    "after_use": N_("reimbursed to the buyer after use"),
}
# Short names of the payment modes, for tables.
PAYMENT_MODE_SHORT = {"advance": N_("advance"), "after_use": N_("after use")}

VOUCHER_KINDS: dict[str, dict[str, str]] = {
    "programme": PROGRAMME_STATUS,
    "voucher": VOUCHER_STATUS,
    "redemption": REDEMPTION_STATUS,
    "claim": CLAIM_STATUS,
    "line": LINE_STATUS,
    "mode": PAYMENT_MODE,
    "mode_short": PAYMENT_MODE_SHORT,
}


def voucher_label(code: object, kind: str, gettext: Callable[[str], str]) -> str:
    """``code`` of ``kind`` (a key of :data:`VOUCHER_KINDS`) in the language of ``gettext``."""
    if code is None or code == "":
        return "–"
    names = VOUCHER_KINDS.get(kind, {})
    key = str(code)
    if key in names:
        return gettext(names[key])
    logger.warning("no %s name for code %r; showing 'Other'", kind, key)
    return gettext(OTHER)


def helpers(gettext: Callable[[str], str]) -> dict[str, Callable[..., str]]:
    """``vlabel(code, kind)`` for templates."""
    return {"vlabel": lambda code, kind: voucher_label(code, kind, gettext)}
