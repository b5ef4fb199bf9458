"""``geomail-admin``: accounts, mailboxes and schema migrations from the shell.

Takes the same storage options as ``geomail`` (flags, MAIL_* environment,
config file, ./.env).  Every sub-command is a small function named
``cmd_<group>_<action>``.
"""

import getpass
import sys

from geomail import config as configuration

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser():
    parser = configuration.build_parser(
        "geomail-admin", admin=True, description="Administer geomail accounts and storage.")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    groups.add_parser("migrate", help="Apply pending schema migrations.")

    account = groups.add_parser("account", help="Manage accounts.")
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="Create an account with the standard mailboxes.")
    add.add_argument("address")
    add.add_argument("--password-stdin", action="store_true",
                     help="Read the password from standard input (first line).")
    passwd = actions.add_parser("passwd", help="Set an account's password.")
    passwd.add_argument("address")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="Read the password from standard input (first line).")
    actions.add_parser("list", help="List accounts with their message counts.")
    delete = actions.add_parser("delete", help="Delete an account, its messages and stored objects.")
    delete.add_argument("address")

    fsck = groups.add_parser(
        "fsck", help="Reconcile the bucket with the attachments table (exit 1: problems found).")
    fsck.add_argument("--older-than", type=duration, default=3600.0, metavar="AGE",
                      help="Report multipart uploads and intent rows older than this "
                           "(seconds, or with s/m/h/d; default 1h).")
    fsck.add_argument("--repair", action="store_true",
                      help="Remove orphan objects, abort old uploads, settle old intents "
                           "(never an object an attachments row names).")

    move = groups.add_parser(
        "migrate-store", help="Copy this (embedded) store to an empty MySQL database and "
                              "S3 bucket; stop geomail first.")
    move.add_argument("--to-db-url", required=True, metavar="URL",
                      help="The MySQL database to copy into (created and migrated if needed).")
    move.add_argument("--to-oss-endpoint", required=True, metavar="URL",
                      help="The S3 endpoint for the objects (same bucket names as now).")
    move.add_argument("--to-oss-access-key", default="", metavar="KEY")
    move.add_argument("--to-oss-secret-key", default="", metavar="SECRET")
    move.add_argument("--to-oss-region", default="us-east-1", metavar="REGION")

    mailbox = groups.add_parser("mailbox", help="Inspect mailboxes.")
    mailbox_actions = mailbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    mailbox_list = mailbox_actions.add_parser("list", help="List an account's mailboxes.")
    mailbox_list.add_argument("address")
    return parser


def duration(text):
    """'90', '90s', '15m', '1h', '2d' -> seconds."""
    import argparse
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    factor = units.get(text[-1:], None)
    number = text[:-1] if factor else text
    try:
        value = float(number) * (factor or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 3600, 30m, 1h)")
    if value < 0:
        raise argparse.ArgumentTypeError("a duration cannot be negative")
    return value


def main(argv=None):
    parser = build_parser()
    args = configuration.load(argv, prog="geomail-admin", admin=True, parser=parser)
    from geomail import preflight
    from geomail.store.errors import StoreError
    handler = globals()["cmd_" + args.group.replace("-", "_")
                        + ("_" + args.action if getattr(args, "action", None) else "")]
    db = None
    try:
        db = open_storage(args)
        return handler(args, db) or EXIT_OK
    except StoreError as exc:
        # storage that does not answer is explained like at start-up (which option to fix)
        sys.stderr.write(f"geomail-admin: {preflight.explain(exc, args)}\n")
        return EXIT_FAILURE
    except Exception as exc:  # storage unreachable and the like: one line, no traceback
        if not _is_storage_failure(exc):
            raise
        sys.stderr.write(f"geomail-admin: {preflight.explain(exc, args)}\n")
        return EXIT_FAILURE
    finally:
        if db is not None:
            db.close()


def open_storage(args):
    """The configured database; the embedded one is created and migrated on first use.

    An embedded store belongs to this host alone, so migrating it here is
    safe and lets `account add` work before the server ever ran; a MySQL
    schema changes only through `migrate` or a starting server.
    """
    from geomail import preflight
    from geomail.store.open import open_database
    if args.backend == "mysql":
        return open_database(args, 2)
    preflight.prepare_data_dir(args)
    db = open_database(args, 2)
    if args.group != "migrate":
        from geomail.store.migrations.migrate import migrate
        try:
            migrate(db)
        except BaseException:
            db.close()
            raise
    return db


def _is_storage_failure(exc):
    """MySQL, SQLite, S3, file-system and start-up check failures: reported as one line."""
    from geomail import preflight
    from geomail.errors import StorageError
    for cause in preflight.causes(exc):
        module = type(cause).__module__ or ""
        if (isinstance(cause, (OSError, preflight.PreflightError, StorageError))
                or module.startswith(("pymysql", "sqlite3", "geomail.blobs"))):
            return True
    return False


def read_password(args, confirm=True):
    """From stdin with --password-stdin, else asked twice on the terminal."""
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Again: ") != password:
            raise SystemExit("geomail-admin: the passwords differ")
    if not password:
        raise SystemExit("geomail-admin: empty password")
    return password


def cmd_migrate(args, db):
    from geomail.store.migrations.migrate import migrate
    if args.backend == "mysql":
        from geomail.store.database import ensure_database
        ensure_database(args.db_url)
    before, after = migrate(db)
    if before == after:
        print(f"schema is up to date (version {after})")
    else:
        print(f"schema migrated from version {before} to {after}")


def cmd_account_add(args, db):
    from geomail.store.accounts import create_account
    password = read_password(args)
    account = create_account(db, args.address, password)
    print(f"created {account.address}")


def cmd_account_passwd(args, db):
    from geomail.store.accounts import set_password
    set_password(db, args.address, read_password(args))
    print(f"password set for {args.address.strip().lower()}")


def cmd_account_list(args, db):
    from geomail.store.accounts import list_accounts
    accounts = list_accounts(db)
    print(f"{'ADDRESS':<40} {'LOGIN':<5} {'MAILBOXES':>9} {'MESSAGES':>9} {'SIZE':>12}")
    for account in accounts:
        print(f"{account.address:<40} {'yes' if account.can_login else 'no':<5} "
              f"{account.mailbox_count:>9} {account.message_count:>9} {account.total_size:>12}")


def cmd_account_delete(args, db):
    from geomail.context import blob_store
    from geomail.janitor import discard
    from geomail.store.accounts import delete_account
    objects = delete_account(db, args.address)
    by_bucket = {}
    for bucket, key in objects:
        by_bucket.setdefault(bucket, []).append(key)
    left = []
    for bucket, keys in by_bucket.items():   # the janitor's discard path: intents first
        left += discard(db, blob_store(args, bucket), keys)
    if left:
        sys.stderr.write(f"geomail-admin: {len(left)} object(s) could not be removed now; "
                         "their intent rows stay for the janitor\n")
    print(f"deleted {args.address.strip().lower()} ({len(objects)} stored attachments removed)")


def cmd_fsck(args, db):
    """Objects without rows, rows without objects, old uploads and intents; see geomail.fsck."""
    import os
    import socket
    from geomail import fsck
    from geomail.context import blob_store
    store = blob_store(args)
    problems = fsck.check(db, store, args.older_than)
    if args.repair and problems:
        fsck.repair(db, store, problems, socket.gethostname(), os.getpid())
    fsck.render(problems, sys.stdout)
    return EXIT_FAILURE if problems else EXIT_OK


def cmd_migrate_store(args, db):
    """Objects to S3, then rows to MySQL (geomail/move_store.py); the source stays as it was."""
    import argparse
    from geomail.blobs.open import open_blob_store
    from geomail.move_store import move
    from geomail.store.database import ensure_database
    from geomail.store.migrations.migrate import migrate
    from geomail.store.open import open_database
    target = argparse.Namespace(
        db_url=args.to_db_url, oss_endpoint=args.to_oss_endpoint, oss_bucket=args.oss_bucket,
        oss_access_key=args.to_oss_access_key, oss_secret_key=args.to_oss_secret_key,
        oss_region=args.to_oss_region, oss_multipart_threshold=args.oss_multipart_threshold,
        oss_part_size=args.oss_part_size, data_dir="")
    ensure_database(target.db_url)
    target_db = open_database(target, 2)
    try:
        migrate(target_db)
        print(f"copying {db.describe()} to {target_db.describe()} and {target.oss_endpoint}")
        move(db, lambda bucket: open_blob_store(args, bucket),
             target_db, lambda bucket: open_blob_store(target, bucket))
    finally:
        target_db.close()
    print("next: start geomail with --db-url and --oss-endpoint (and the keys) of the target")


def cmd_mailbox_list(args, db):
    from geomail.store.accounts import get_account
    from geomail.store.errors import AccountNotFound
    from geomail.store.mailboxes import list_mailboxes
    account = get_account(db, args.address)
    if account is None:
        raise AccountNotFound(f"no account {args.address.strip().lower()}")
    print(f"{'NAME':<30} {'SPECIAL-USE':<12} {'MESSAGES':>9} {'UNSEEN':>7} {'UIDVALIDITY':>11} {'UIDNEXT':>8}")
    for box in list_mailboxes(db, account.id):
        print(f"{box.name:<30} {box.special_use or '':<12} {box.message_count:>9} "
              f"{box.unseen_count:>7} {box.uidvalidity:>11} {box.uidnext:>8}")


if __name__ == "__main__":
    sys.exit(main())
