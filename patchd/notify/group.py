"""Which customer gets which email: a run's results grouped per customer.

Every customer with results in a run gets at most one email, listing all of their
installations by case:

- ``patched``: patched for you (``patched``);
- ``action``: could not be patched, action needed (``dry-run-failed``, ``apply-failed``,
  and any other outcome of an affected installation that leaves it unpatched);
- ``reverted``: patched, the site got worse, undone at once by the health check:
  vulnerable still, and a conflict to fix before the fix can go in;
- ``rolled_back``: patched, then undone by ``patchd rollback``: vulnerable again;
- ``notify_only``: affected, but the account's policy is ``notify-only`` (``skipped`` with
  that policy and a dry run that did not find the fix present);
- ``protected``: the fix was already there (``already-patched``, or a notify-only dry run
  that found it); mentioned only next to other cases or in an all-clear;
- ``unresolved``: not checked (``unreachable``, ``error``).

Installations with policy ``skip`` and ``not-affected`` ones are never listed. A customer
whose only results are not-affected/already-patched gets an all-clear only when asked.

NOTE: the safety rule "one customer's email never mentions another customer's accounts"
is enforced here: a customer's items come only from results carrying that customer id,
and every such account must still belong to that customer in the inventory; otherwise the
customer is *held* (no email) with the reason, for the operator to resolve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from patchd.inventory import Customer, Inventory
from patchd.ledger.models import Result
from patchd.outcomes import Outcome, skipped_verdict

Kind = Literal["action", "reverted", "rolled-back", "notify-only", "patched", "all-clear"]
"""The case an email is about (the most urgent of its items)."""

#: The bucket of each outcome; an outcome not named here (of an affected installation,
#: e.g. a newer patchd's word) is ``action``: the installation was not patched.
_BUCKET: dict[str, str] = {
    Outcome.PATCHED.value: "patched",
    Outcome.ALREADY_PATCHED.value: "protected",
    Outcome.REVERTED.value: "reverted",
    Outcome.ROLLED_BACK.value: "rolled_back",
    Outcome.UNREACHABLE.value: "unresolved",
    Outcome.ERROR.value: "unresolved",
}
BUCKETS = (
    "patched",
    "action",
    "reverted",
    "rolled_back",
    "notify_only",
    "protected",
    "unresolved",
)


@dataclass(frozen=True)
class Item:
    """One installation of the customer, as an email lists it."""

    account: str
    path: str
    cms: str | None
    version: str | None
    outcome: str
    reason: str | None
    detail: str | None


@dataclass(frozen=True)
class Notice:
    """What one customer is told about one run (or why they are held back)."""

    run_id: int
    customer_id: str
    customer: Customer | None
    patched: tuple[Item, ...] = ()
    action: tuple[Item, ...] = ()
    reverted: tuple[Item, ...] = ()
    rolled_back: tuple[Item, ...] = ()
    notify_only: tuple[Item, ...] = ()
    protected: tuple[Item, ...] = ()
    unresolved: tuple[Item, ...] = ()
    not_affected: int = 0
    held: str | None = None
    accounts: frozenset[str] = field(default_factory=frozenset)

    @property
    def kind(self) -> Kind | None:
        """The email's case; None when there is nothing to tell."""
        if self.action or self.unresolved:
            return "action"
        if self.reverted:
            return "reverted"
        if self.rolled_back:
            return "rolled-back"
        if self.notify_only:
            return "notify-only"
        if self.patched:
            return "patched"
        if self.protected or self.not_affected:
            return "all-clear"
        return None

    @property
    def items(self) -> tuple[Item, ...]:
        """Every listed installation."""
        return (
            self.action
            + self.unresolved
            + self.reverted
            + self.rolled_back
            + self.notify_only
            + self.patched
            + self.protected
        )

    @property
    def told(self) -> dict[str, str]:
        """What the email tells per installation: ``account:path`` -> outcome word."""
        return {f"{i.account}:{i.path}": i.outcome for i in self.items}


def _item(r: Result) -> Item:
    return Item(r.account, r.path, r.cms, r.version, r.outcome.value, r.reason, r.detail)


def _found_fix(r: Result) -> bool:
    # NOTE: a notify-only installation is dry-run only; its detail holds the verdict
    # ("policy notify-only; dry run: already-patched"): such a customer is safe.
    return skipped_verdict(r.detail) == Outcome.ALREADY_PATCHED


def _notice(
    run_id: int, customer_id: str, rows: list[Result], inventory: Inventory, unresolved_ok: bool
) -> Notice:
    customer: Customer | None = None
    held: str | None = None
    for r in rows:
        try:
            account = inventory.account(r.account)
        except KeyError:
            held = f"account {r.account} is no longer in the inventory"
            break
        if account.customer.id != customer_id:
            held = f"account {r.account} belongs to another customer in the inventory now"
            break
        customer = account.customer
    buckets: dict[str, list[Item]] = {k: [] for k in BUCKETS}
    not_affected = 0
    for r in rows:
        if r.policy == "skip":
            continue
        if r.outcome is Outcome.SKIPPED:
            if r.policy == "notify-only":
                buckets["protected" if _found_fix(r) else "notify_only"].append(_item(r))
        elif r.outcome is Outcome.NOT_AFFECTED:
            not_affected += 1
        else:
            buckets[_BUCKET.get(r.outcome.value, "action")].append(_item(r))
    if held is None and buckets["unresolved"] and not unresolved_ok:
        held = (
            f"{len(buckets['unresolved'])} installation(s) unreachable or failed with an "
            "error: resume the run, or pass --include-unresolved"
        )
    return Notice(
        run_id=run_id,
        customer_id=customer_id,
        customer=customer,
        not_affected=not_affected,
        held=held,
        accounts=frozenset(r.account for r in rows),
        **{k: tuple(v) for k, v in buckets.items()},
    )


def plan_notices(
    run_id: int,
    results: Iterable[Result],
    inventory: Inventory,
    *,
    all_clear: bool = False,
    include_unresolved: bool = False,
) -> list[Notice]:
    """One :class:`Notice` per customer who gets an email or is held back, by customer id.

    Customers with nothing to tell (only not-affected/skip results, or an all-clear while
    ``all_clear`` is false) are left out. Results without a customer id are held under
    the customer id ``""``.
    """
    per: dict[str, list[Result]] = {}
    for r in results:
        per.setdefault(r.customer_id or "", []).append(r)
    notices: list[Notice] = []
    for customer_id in sorted(per):
        if not customer_id:
            accounts = ", ".join(sorted({r.account for r in per[customer_id]}))
            notices.append(
                Notice(run_id, "", None, held=f"results without a customer id: {accounts}")
            )
            continue
        notice = _notice(run_id, customer_id, per[customer_id], inventory, include_unresolved)
        kind = notice.kind
        if kind is None or (kind == "all-clear" and not all_clear):
            continue
        notices.append(notice)
    return notices
