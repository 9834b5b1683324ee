"""The audit's Hash check (wallet/core/audit.py): each order_no booked exactly as its status says:
a debited order has its debit, a settled one its payout, a failed or cancelled one its refund
(docs/hash.md §6.2), each on the order's own wallet (its player's, in its currency)."""
from sqlalchemy import select

from ..core.audit import ops_text, rows_on_another_wallet
from .schema import hash_orders


def check_orders(conn, booked) -> list[str]:
    problems = rows_on_another_wallet(conn, "hash", hash_orders, hash_orders.c.order_no, "order")
    for order in conn.execution_options(yield_per=10000).execute(select(hash_orders)):
        ops = booked.pop(("hash", order.order_no), {})
        want = {"order_add": -order.amount} if order.debited else {}
        if order.status == 1:
            want["order_settle"] = order.payout
        elif order.status in (2, 4) and order.debited:
            want["order_refund"] = order.amount
        if ops != want:
            problems.append(f"Hash order {order.order_no} (status {order.status}): ledger has "
                            f"{ops_text(ops)}, expected {ops_text(want)}")
    return problems
