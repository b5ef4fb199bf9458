"""Accounts: creation (by an operator or automatically at delivery), passwords, deletion."""

import dataclasses
import datetime

from geomail import passwords
from geomail.store import batch, contents, logins
from geomail.store.errors import is_duplicate_key
from geomail.store.errors import AccountExists, AccountNotFound, InvalidAddress
from geomail.store.mailboxes import STANDARD_MAILBOXES, allocate_uidvalidity, create_mailbox_in

MAX_ADDRESS_LENGTH = 320  # the column size: 64 (local part) + 1 + 255 (domain)


@dataclasses.dataclass(frozen=True)
class Account:
    id: int
    address: str
    domain: str
    can_login: bool  # False while no password is set (auto-created accounts)
    quota_bytes: int | None
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class AccountSummary(Account):
    mailbox_count: int
    message_count: int
    total_size: int


def normalize_address(address):
    """The stored form: stripped, lower-cased ``local@domain``; raises InvalidAddress.

    Deliberately minimal: SMTP has already parsed the path; this only keeps
    nonsense out of the accounts table.
    """
    if not isinstance(address, str):
        raise InvalidAddress("address must be a string")
    address = address.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress(f"{address!r} is not an address of the form local@domain")
    if len(address) > MAX_ADDRESS_LENGTH or len(local) > 64 or len(domain) > 255:
        raise InvalidAddress(f"address {address!r} is too long")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7f for c in address):
        raise InvalidAddress(f"address {address!r} contains white space or a control character")
    if "@" in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
        raise InvalidAddress(f"address {address!r} has a malformed domain")
    return address


_ACCOUNT_COLUMNS = "a.id, a.address, a.domain, a.password_hash IS NOT NULL, a.quota_bytes, a.created_at"


def _account(row):
    return Account(id=row[0], address=row[1], domain=row[2], can_login=bool(row[3]),
                   quota_bytes=row[4], created_at=row[5])


def _create_in(cur, address, password_hash):
    """Insert the account and its standard mailboxes within the caller's transaction."""
    domain = address.rpartition("@")[2]
    try:
        cur.execute("INSERT INTO accounts (address, domain, password_hash) VALUES (%s, %s, %s)",
                    (address, domain, password_hash))
    except Exception as exc:
        if is_duplicate_key(exc):
            raise AccountExists(f"account {address} already exists") from None
        raise
    account_id = cur.lastrowid
    first = allocate_uidvalidity(cur, len(STANDARD_MAILBOXES))
    for offset, (name, special_use) in enumerate(STANDARD_MAILBOXES):
        create_mailbox_in(cur, account_id, name, special_use, subscribe=True,
                          uidvalidity=first + offset)
    return account_id


def create_account(db, address, password=None):
    """Create an account with INBOX, Sent, Drafts, Trash and Junk; raises AccountExists.

    Without a password the account receives mail but cannot log in until an
    operator sets one.
    """
    address = normalize_address(address)
    password_hash = passwords.hash_password(password) if password is not None else None
    with db.transaction() as cur:
        _create_in(cur, address, password_hash)
    return get_account(db, address)


def ensure_account(db, address, attempts=5):
    """The account for ``address``, created (without password) if missing.

    Race-safe across workers and hosts: the unique key on address decides;
    the loser of a race gets a duplicate-key error and reads the winner's row.
    """
    address = normalize_address(address)
    for _ in range(attempts):
        account = get_account(db, address)
        if account is not None:
            return account
        try:
            db.run_transaction(lambda cur: _create_in(cur, address, None))
        except AccountExists:
            continue  # another worker won the race; read its row
        return get_account(db, address)
    raise AccountNotFound(f"account {address} could neither be found nor created")


def get_account(db, address):
    """The account for ``address``, or None (also for an invalid address)."""
    try:
        address = normalize_address(address)
    except InvalidAddress:
        return None
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts a WHERE a.address = %s", (address,))
        row = cur.fetchone()
    return _account(row) if row else None


def set_password(db, address, password):
    """Set (or, with None, remove) the password; raises AccountNotFound."""
    address = normalize_address(address)
    password_hash = passwords.hash_password(password) if password is not None else None
    with db.transaction() as cur:
        cur.execute("UPDATE accounts SET password_hash = %s WHERE address = %s",
                    (password_hash, address))
        # rowcount counts matched rows only with CLIENT.FOUND_ROWS; check existence instead
        cur.execute("SELECT 1 FROM accounts WHERE address = %s", (address,))
        if cur.fetchone() is None:
            raise AccountNotFound(f"no account {address}")


def verify_login(db, address, password):
    """The account when ``password`` is right for ``address``, else None.

    Unknown addresses and accounts without a password cost as much time as
    a wrong password, so a client cannot probe which addresses exist.
    """
    try:
        address = normalize_address(address)
    except InvalidAddress:
        passwords.burn_time()
        return None
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT_COLUMNS}, a.password_hash FROM accounts a "
                    "WHERE a.address = %s", (address,))
        row = cur.fetchone()
    if row is None or row[6] is None:
        passwords.burn_time()
        return None
    return _account(row) if passwords.verify_password(password, row[6]) else None


def list_accounts(db):
    """Every account with its mailbox count, message count and total size, by address."""
    with db.cursor() as cur:
        cur.execute(f"SELECT {_ACCOUNT_COLUMNS}, COUNT(m.id), COALESCE(SUM(m.message_count), 0), "
                    "COALESCE(SUM(m.total_size), 0) FROM accounts a "
                    "LEFT JOIN mailboxes m ON m.account_id = a.id "
                    "GROUP BY a.id ORDER BY a.address")
        return [AccountSummary(**dataclasses.asdict(_account(row)), mailbox_count=int(row[6]),
                               message_count=int(row[7]), total_size=int(row[8]))
                for row in cur.fetchall()]


def delete_account(db, address):
    """Delete the account with its mailboxes and messages; returns [(bucket, key)] to delete from S3.

    Message contents shared with other accounts (one delivery to several
    local recipients, COPY) lose one reference per deleted message and stay;
    those left with none are deleted with their attachment rows, and their S3
    objects are returned. The caller deletes those objects after this commit,
    never before: a failure in between leaves an object nothing refers to
    (harmless garbage), never a row pointing at a missing object.
    """
    address = normalize_address(address)
    return db.run_transaction(lambda cur: _delete_in(cur, address))


def _delete_in(cur, address):
    cur.execute("SELECT id FROM accounts WHERE address = %s FOR UPDATE", (address,))
    row = cur.fetchone()
    if row is None:
        raise AccountNotFound(f"no account {address}")
    account_id = row[0]
    # Lock the mailboxes first, in the order delivery locks them, so a
    # delivery in flight either finishes before us or sees the account gone.
    cur.execute("SELECT id FROM mailboxes WHERE account_id = %s ORDER BY id FOR UPDATE", (account_id,))
    cur.execute("SELECT m.content_id, COUNT(*) FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id "
                "WHERE b.account_id = %s GROUP BY m.content_id ORDER BY m.content_id", (account_id,))
    references = dict(cur.fetchall())
    cur.execute("DELETE FROM messages WHERE mailbox_id IN "
                "(SELECT id FROM mailboxes WHERE account_id = %s)", (account_id,))
    objects = contents.release(cur, references)
    cur.execute("DELETE FROM accounts WHERE id = %s", (account_id,))  # cascades the rest
    return objects


def login_lookup(db, address, throttle_keys, window):
    """(Account or None, its password hash or None, {throttle key: failed attempts in
    the window}): what a login checks first, in one request (store/batch.py).

    The counts are read, not reserved (store/logins.py ``peek_query``): a login whose
    password the worker's credential cache already knows to be right costs no
    write; any other login still reserves its attempt before the password is
    checked.
    """
    try:
        address = normalize_address(address)
    except InvalidAddress:
        address = None
    queries = [logins.peek_query(db, throttle_keys, window)]
    if address is not None:
        queries.append((f"SELECT {_ACCOUNT_COLUMNS}, a.password_hash FROM accounts a "
                        "WHERE a.address = %s", (address,)))
    results = batch.read_all(db, queries)
    counts = logins.counts_of(throttle_keys, results[0])
    rows = results[1] if address is not None else []
    if not rows:
        return None, None, counts
    return _account(rows[0]), rows[0][-1], counts

