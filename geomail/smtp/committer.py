"""Group commit of SMTP deliveries: one committer per worker (issue 13).

A delivery that ends while nothing is being committed is committed at once,
so nobody waits longer than alone.  Deliveries that end while a COMMIT runs
wait for it and then share the next transaction (``commit_together``: each
message whole or absent, one that fails tried again alone), so the busier
the worker, the more each COMMIT, its log flush and its hold of a mailbox
row lock carry.  Each session still answers only after the COMMIT that holds
its message (docs/DESIGN.md, invariant 1).

On MySQL two transactions may be in flight at once (IN_FLIGHT): the second
is already at the server while the first commits, runs its content INSERTs
(the mailbox row is locked last) and waits only for the row lock, and
InnoDB's group commit may flush the two logs at once.  With one in flight, the deliveries ending during a COMMIT waited for its
whole round trip before theirs could even be sent (measured, 20 sessions
of smtp-source on 2 workers: 1,300 against 1,950 messages/s with session
reuse).  SQLite writes one transaction at a time anyway: one in flight.
"""

import gevent
from gevent.event import AsyncResult

from geomail.ingest import DeliveryFailed, commit_together

# Messages per transaction at most: bounds how long it holds its mailboxes'
# row locks and how big it is (the store splits a script over several
# requests past max_allowed_packet, so this is no hard limit of MySQL's).
MAX_BATCH = 64
IN_FLIGHT = 2          # transactions committing at once, where the store can overlap them


class Committer:
    """Collects the deliveries of one worker's sessions ready to commit."""

    def __init__(self, in_flight=1):
        self.ready = []            # (delivery, targets, AsyncResult)
        self.in_flight = in_flight
        self.running = 0           # greenlets committing now, at most in_flight

    def commit(self, delivery, targets):
        """Store the delivery for targets: [(mailbox_id, uid)] once the COMMIT holding
        it has returned; DeliveryFailed (nothing stored) otherwise."""
        result = AsyncResult()
        self.ready.append((delivery, targets, result))
        if self.running < self.in_flight:
            self.running += 1
            gevent.spawn(self._run)
        outcome = result.get()
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        return outcome

    def _run(self):
        """Commit what is ready, then what became ready meanwhile, until none is left."""
        try:
            while self.ready:
                batch, self.ready = self.ready[:MAX_BATCH], self.ready[MAX_BATCH:]
                try:
                    outcomes = commit_together([(delivery, targets)
                                                for delivery, targets, _ in batch])
                except Exception as exc:        # a bug: no session may wait for ever
                    for _, _, result in batch:
                        result.set(DeliveryFailed(exc))
                    continue
                except BaseException as exc:    # killed: the sessions waiting are told
                    for _, _, result in batch + self.ready:
                        result.set(DeliveryFailed(exc))
                    self.ready = []
                    raise
                for (_, _, result), outcome in zip(batch, outcomes):
                    result.set(outcome)
        finally:
            self.running -= 1
