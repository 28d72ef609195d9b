"""Words with one spelling: the channels a decision arrives by, what became of an inbox row.

Each vocabulary is written here once, as a ``StrEnum`` (a member *is* its string, so rows,
JSON and comparisons with plain strings keep working); the store checks against these and
the services write these. Add a value here, nowhere else.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DecisionChannel", "DecisionStatus", "InboxResult", "InboxSource"]


class DecisionChannel(StrEnum):
    """How a decision reached the store (``decisions.channel``)."""

    UI = "ui"  # the Resume form of a parked run in the Prefect UI
    CLI = "cli"  # weapp-launch approve
    WECHAT = "wechat"  # a WeChat push, through the inbox
    WECHAT_API = "wechat-api"  # read back from the WeChat platform API (the WeChat platform work)
    LINK = "link"  # a signed staff link
    API = "api"  # the receiver's API-key route
    SIMULATOR = "simulator"  # the dev simulator
    SYSTEM = "system"  # the process itself (a timeout, an early decision)


class DecisionStatus(StrEnum):
    """What submitting a decision did (``DecisionResult.status``)."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the attempt was decided already: nothing changed


class InboxSource(StrEnum):
    """Who sent an inbox row (``inbox.source``)."""

    WECHAT = "wechat"
    STAFF = "staff"
    SYSTEM = "system"


class InboxResult(StrEnum):
    """What applying an inbox row did (``inbox.result``)."""

    APPLIED = "applied"  # at least one decision recorded
    DUPLICATE = "duplicate"  # every decision was already there
    NOTED = "noted"  # the push decides nothing; the note is in ``inbox.error`` for staff
    REFUSED = "refused"  # the decision failed the gate's form or rules
    IGNORED = "ignored"  # an event we do not act on (stored and acknowledged only)
    NO_LAUNCH = "no-launch"  # no launch matches the push
    ERROR = "error"  # the stored payload cannot be read back
