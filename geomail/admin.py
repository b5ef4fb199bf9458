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
    delete = actions.add_parser("delete", help="Delete an account, its messages and S3 objects.")
    delete.add_argument("address")

    mailbox = groups.add_parser("mailbox", help="Inspect mailboxes.")
    mailbox_actions = mailbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    mailbox_list = mailbox_actions.add_parser("list", help="List an account's mailboxes.")
    mailbox_list.add_argument("address")
    return parser


def main(argv=None):
    parser = build_parser()
    args = configuration.load(argv, prog="geomail-admin", admin=True, parser=parser)
    from geomail.store.database import Database
    from geomail.store.errors import StoreError
    db = Database(args.db_url, 2)
    handler = globals()["cmd_" + args.group + ("_" + args.action if getattr(args, "action", None) else "")]
    try:
        return handler(args, db) or EXIT_OK
    except StoreError as exc:
        sys.stderr.write(f"geomail-admin: {exc}\n")
        return EXIT_FAILURE
    except Exception as exc:  # storage unreachable and the like: one line, no traceback
        from geomail.blobs.s3 import BlobStoreError
        import pymysql
        if isinstance(exc, (pymysql.MySQLError, BlobStoreError, OSError)):
            sys.stderr.write(f"geomail-admin: {exc}\n")
            return EXIT_FAILURE
        raise
    finally:
        db.close()


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
    from geomail.store.database import ensure_database
    from geomail.store.migrations.migrate import migrate
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
    from geomail.store.accounts import delete_account
    objects = delete_account(db, args.address)
    by_bucket = {}
    for bucket, key in objects:
        by_bucket.setdefault(bucket, []).append(key)
    for bucket, keys in by_bucket.items():
        blob_store(args, bucket).delete(keys)
    print(f"deleted {args.address.strip().lower()} ({len(objects)} stored attachments removed)")


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
