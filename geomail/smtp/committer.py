"""Group commit of SMTP deliveries: one committer per worker (issue 13).

A delivery that ends while nothing is being committed is committed at once,
so nobody waits longer than alone.  Deliveries that end while a COMMIT runs
wait for it and then share the next transaction (``commit_together``: each
message whole or absent, one that fails tried again alone), so the busier
the worker, the more each COMMIT, its log flush and its hold of a mailbox
row lock carry.  Each session still answers only after the COMMIT that holds
its message (docs/DESIGN.md, invariant 1).
"""

import gevent
from gevent.event import AsyncResult

from geomail.ingest import DeliveryFailed, commit_together

# Messages per transaction at most: bounds how long it holds its mailboxes'
# row locks and how big it is (the store splits a script over several
# requests past max_allowed_packet, so this is no hard limit of MySQL's).
MAX_BATCH = 64


class Committer:
    """Collects the deliveries of one worker's sessions ready to commit."""

    def __init__(self):
        self.ready = []            # (delivery, targets, AsyncResult)
        self.running = None        # the greenlet committing, or None

    def commit(self, delivery, targets):
        """Store the delivery for targets: [(mailbox_id, uid)] once the COMMIT holding
        it has returned; DeliveryFailed (nothing stored) otherwise."""
        result = AsyncResult()
        self.ready.append((delivery, targets, result))
        if self.running is None:
            self.running = gevent.spawn(self._run)
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
            self.running = None
