"""The command table: name -> handler, allowed states and flags (like Dovecot's imap-commands.c).

``forbids_expunge``: the command uses sequence numbers the client may still
be holding (FETCH, STORE, SEARCH and their kin), so no untagged EXPUNGE may be
sent while it runs or right after it (RFC 3501 §7.4.1); the UID forms are
exempt.  ``arguments``: a space and arguments follow the command name.
Handlers are ``handler(session, parser, tag)`` and return the text of the
tagged OK, or (code, text), or None for "<NAME> completed".
"""

import dataclasses

from geomail.imap import (anystate, append, auth, compress, contexts, copy, expunge, fetch, idle,
                          listing, mailbox, quota, search, select, sort, store_command, thread)
from geomail.imap.states import ANY, AUTH, NOAUTH, SEL


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    handler: object
    states: tuple
    arguments: bool = True
    forbids_expunge: bool = False


def _table(*commands):
    return {c.name: c for c in commands}


COMMANDS = _table(
    # any state (RFC 3501 §6.1)
    Command("CAPABILITY", anystate.capability, ANY, arguments=False),
    Command("NOOP", anystate.noop, ANY, arguments=False),
    Command("LOGOUT", anystate.logout, ANY, arguments=False),
    Command("ID", anystate.id_, ANY),                                # RFC 2971
    # not authenticated (§6.2)
    Command("STARTTLS", auth.starttls, NOAUTH, arguments=False),
    Command("LOGIN", auth.login, NOAUTH),
    Command("AUTHENTICATE", auth.authenticate, NOAUTH),
    # authenticated (§6.3)
    Command("ENABLE", mailbox.enable, AUTH),                         # RFC 5161
    Command("SELECT", select.select, AUTH),
    Command("EXAMINE", select.examine, AUTH),
    Command("CREATE", mailbox.create, AUTH),
    Command("DELETE", mailbox.delete, AUTH),
    Command("RENAME", mailbox.rename, AUTH),
    Command("SUBSCRIBE", mailbox.subscribe, AUTH),
    Command("UNSUBSCRIBE", mailbox.unsubscribe, AUTH),
    Command("LIST", listing.list_, AUTH),
    Command("LSUB", listing.lsub, AUTH),
    Command("STATUS", mailbox.status, AUTH),
    Command("NAMESPACE", mailbox.namespace, AUTH, arguments=False),  # RFC 2342
    Command("APPEND", append.append, AUTH),
    Command("IDLE", idle.idle, AUTH, arguments=False),               # RFC 2177
    Command("COMPRESS", compress.compress, AUTH),                    # RFC 4978
    Command("GETQUOTA", quota.getquota, AUTH),                       # RFC 9208
    Command("GETQUOTAROOT", quota.getquotaroot, AUTH),
    Command("SETQUOTA", quota.setquota, AUTH),
    # selected (§6.4)
    Command("CHECK", select.check, SEL, arguments=False),
    Command("CLOSE", select.close, SEL, arguments=False),
    Command("UNSELECT", select.unselect, SEL, arguments=False),      # RFC 3691
    Command("EXPUNGE", expunge.expunge, SEL, arguments=False),
    Command("SEARCH", search.search, SEL, forbids_expunge=True),
    Command("FETCH", fetch.fetch, SEL, forbids_expunge=True),
    Command("STORE", store_command.store, SEL, forbids_expunge=True),
    Command("COPY", copy.copy, SEL, forbids_expunge=True),
    Command("MOVE", copy.move, SEL),                                 # RFC 6851
    Command("SORT", sort.sort, SEL, forbids_expunge=True),          # RFC 5256
    Command("THREAD", thread.thread, SEL, forbids_expunge=True),    # RFC 5256
    Command("CANCELUPDATE", contexts.cancelupdate, SEL),            # RFC 5267 §4.2
    Command("UID SEARCH", search.uid_search, SEL),
    Command("UID SORT", sort.uid_sort, SEL),
    Command("UID THREAD", thread.uid_thread, SEL),
    Command("UID FETCH", fetch.uid_fetch, SEL),
    Command("UID STORE", store_command.uid_store, SEL),
    Command("UID COPY", copy.uid_copy, SEL),
    Command("UID MOVE", copy.uid_move, SEL),
    Command("UID EXPUNGE", expunge.uid_expunge, SEL),               # RFC 4315
)
