"""``geomail-admin``: accounts, mailboxes and schema migrations from the shell.

Takes the same storage options as ``geomail`` (flags, MAIL_* environment,
config file, ./.env), before or after the sub-command.  Every sub-command is
a small function named ``cmd_<group>_<action>``; what it prints is a table,
or JSON with ``--json``, for scripts.

Exit codes: 0 done; 1 the command failed (storage unreachable, no such
account or mailbox, fsck found problems); 2 bad usage (unknown option, no
password given where no terminal can ask for one).
"""

import getpass
import json
import sys

from geomail import config as configuration

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser():
    parser = configuration.build_parser(
        "geomail-admin", admin=True, description="Administer geomail accounts and storage.")
    parser.add_argument("--json", action="store_true",
                        help="Print JSON instead of a table (list, show, status commands).")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    groups.add_parser("migrate", help="Apply pending schema migrations.")

    account = groups.add_parser("account", help="Manage accounts.")
    actions = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="Create an account with the standard mailboxes.")
    add.add_argument("address")
    _password_options(add)
    passwd = actions.add_parser("passwd", help="Set an account's password.")
    passwd.add_argument("address")
    _password_options(passwd)
    actions.add_parser("list", help="List accounts with their message counts.")
    show = actions.add_parser("show", help="One account: its settings and mailboxes.")
    show.add_argument("address")
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

    mailbox = groups.add_parser("mailbox", help="List, create, rename and delete mailboxes.")
    mailbox_actions = mailbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    mailbox_list = mailbox_actions.add_parser("list", help="List an account's mailboxes.")
    mailbox_list.add_argument("address")
    for action, text in (("create", "Create a mailbox (and missing parents)."),
                         ("delete", "Delete a mailbox, its messages and their stored objects."),
                         ("status", "Counters of one mailbox.")):
        command = mailbox_actions.add_parser(action, help=text)
        command.add_argument("address")
        command.add_argument("name", help="The mailbox name, '/' between levels (UTF-8).")
    rename = mailbox_actions.add_parser("rename", help="Rename a mailbox and its children.")
    rename.add_argument("address")
    rename.add_argument("name")
    rename.add_argument("new_name")
    who = groups.add_parser("who", help="IMAP sessions logged in now (every host), by account.")
    who.add_argument("address", nargs="?", help="Only this account's sessions.")
    kick = groups.add_parser("kick", help="End an account's IMAP sessions (or one, by --session).")
    kick.add_argument("target", nargs="?", metavar="ADDRESS")
    kick.add_argument("--session", metavar="ID", help="The session id that `who` shows.")
    search = groups.add_parser(
        "search", help="List one mailbox's messages that match IMAP search keys "
                       "(e.g. FROM alice SINCE 1-Jan-2026 'SUBJECT \"two words\"').")
    search.add_argument("address")
    search.add_argument("mailbox")
    search.add_argument("keys", nargs="*", help="IMAP SEARCH keys (RFC 3501 6.4.4); none: ALL.")
    fetch = groups.add_parser("fetch", help="Print one message by UID: headers, or --raw.")
    fetch.add_argument("address")
    fetch.add_argument("mailbox")
    fetch.add_argument("uid")
    fetch.add_argument("--raw", action="store_true", help="Every byte of it, as stored.")
    mail_in = groups.add_parser(
        "import", help="Deliver an mbox file or a Maildir (Maildir++ folders too) into an "
                       "account; run again to resume, it skips what is there.")
    mail_in.add_argument("address")
    mail_in.add_argument("path", help="An mbox file, or a Maildir directory (cur/, new/).")
    mail_in.add_argument("--parallel", type=int, default=4, metavar="N",
                         help="Messages delivered at once (default 4).")
    mail_out = groups.add_parser(
        "export", help="Write an account's mail, byte for byte as stored, as Maildir or mbox.")
    mail_out.add_argument("address")
    mail_out.add_argument("directory")
    mail_out.add_argument("--format", choices=("maildir", "mbox"), default="maildir",
                          help="maildir: INBOX in DIRECTORY, other mailboxes as Maildir++ "
                               "folders, flags in the file names; mbox: one mboxrd file per "
                               "mailbox (default maildir).")
    for command in _leaves(groups):
        command.epilog = configuration.SETTINGS_EPILOG
    return parser


def _password_options(command):
    source = command.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true",
                        help="Read the password from standard input (first line).")
    source.add_argument("--password-file", metavar="PATH",
                        help="Read the password from the first line of this file.")


def _leaves(groups):
    """Every sub-command parser that takes no further sub-command."""
    for command in groups.choices.values():
        inner = [a for a in command._actions if a.__class__.__name__ == "_SubParsersAction"]
        if inner:
            yield from _leaves(inner[0])
        else:
            yield command


def hoist_options(parser, argv):
    """argv with the top-level options given after the sub-command moved before it,
    so ``geomail-admin account list --data-dir D`` works like ``... --data-dir D account list``."""
    takes_value = {}
    for action in parser._actions:
        for flag in action.option_strings:
            if flag not in ("-h", "--help"):
                takes_value[flag] = action.nargs != 0 and action.nargs != "?"
    front, rest, seen_command = [], [], False
    index = 0
    while index < len(argv):
        token = argv[index]
        flag = token.split("=", 1)[0]
        if not seen_command and not token.startswith("-"):
            seen_command = True
        if seen_command and flag in takes_value:
            front.append(token)
            if takes_value[flag] and "=" not in token and index + 1 < len(argv):
                index += 1
                front.append(argv[index])
        elif not seen_command and flag in takes_value and takes_value[flag] and "=" not in token:
            front.append(token)
            if index + 1 < len(argv):
                index += 1
                front.append(argv[index])
        elif not seen_command:
            front.append(token)
        else:
            rest.append(token)
        index += 1
    return front + rest


def emit(args, rows, columns):
    """Print ``rows`` (dicts) as an aligned table of ``columns``, or as JSON with --json."""
    if args.json:
        print(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
        return
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns).rstrip())


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
    argv = hoist_options(parser, sys.argv[1:] if argv is None else list(argv))
    args = configuration.load(argv, prog="geomail-admin", admin=True, parser=parser)
    from geomail import preflight
    from geomail.store.errors import StoreError
    handler = globals()["cmd_" + args.group.replace("-", "_")
                        + ("_" + args.action if getattr(args, "action", None) else "")]
    from geomail.manage import Invalid
    db = None
    try:
        db = open_storage(args)
        return handler(args, db) or EXIT_OK
    except Invalid as exc:
        _usage(str(exc))
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
    connections = getattr(args, "parallel", 1) + 1      # import: one per delivery thread
    if args.backend == "mysql":
        return open_database(args, connections)
    preflight.prepare_data_dir(args)
    db = open_database(args, connections)
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
    """From --password-file, stdin with --password-stdin, else asked twice on the terminal;
    with no terminal to ask on, a usage error (exit 2), never an EOFError."""
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as handle:
                password = handle.readline().rstrip("\r\n")
        except OSError as exc:
            _usage(f"cannot read --password-file {args.password_file}: {exc.strerror}")
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        _usage("no terminal to ask for the password on: give --password-stdin or "
               "--password-file PATH")
    else:
        try:
            password = getpass.getpass("Password: ")
            if confirm and getpass.getpass("Again: ") != password:
                _usage("the passwords differ")
        except (EOFError, KeyboardInterrupt):
            _usage("no password given")
    if not password:
        _usage("empty password")
    return password


def _usage(message):
    sys.stderr.write(f"geomail-admin: {message}\n")
    raise SystemExit(EXIT_USAGE)


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
    from geomail import manage
    print(f"created {manage.add_account(db, args.address, read_password(args))['address']}")


def cmd_account_passwd(args, db):
    from geomail import manage
    print(f"password set for {manage.set_password(db, args.address, read_password(args))['address']}")


def cmd_account_list(args, db):
    from geomail import manage
    rows = manage.list_accounts(db)
    if not args.json:
        rows = [dict(row, login="yes" if row["login"] else "no") for row in rows]
    emit(args, rows, manage.ACCOUNT_COLUMNS)


def cmd_account_show(args, db):
    from geomail import manage
    account = manage.show_account(db, args.address)
    if args.json:
        print(json.dumps(account, indent=2, ensure_ascii=False))
        return
    print(f"address:   {account['address']}\nid:        {account['id']}\n"
          f"login:     {'yes' if account['login'] else 'no (no password set)'}\n"
          f"created:   {account['created']}\n"
          f"mailboxes: {len(account['mailboxes'])}, messages: {account['messages']}\n")
    emit(args, account["mailboxes"], manage.MAILBOX_COLUMNS)


def cmd_account_delete(args, db):
    from geomail import manage
    done = manage.delete_account(db, args, args.address)
    _report_left(done)
    print(f"deleted {done['address']} ({done['objects_removed']} stored attachments removed)")


def _report_left(done):
    if done["objects_left_to_janitor"]:
        sys.stderr.write(f"geomail-admin: {done['objects_left_to_janitor']} object(s) could not "
                         "be removed now; their intent rows stay for the janitor\n")


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


def _account(db, address):
    from geomail import manage
    return manage.account_of(db, address)


def cmd_mailbox_list(args, db):
    from geomail import manage
    emit(args, manage.list_account_mailboxes(db, args.address), manage.MAILBOX_COLUMNS)


def cmd_mailbox_create(args, db):
    from geomail import manage
    done = manage.create_mailbox(db, args.address, args.name)
    print(f"created {done['name']} for {done['address']}")


def cmd_mailbox_rename(args, db):
    from geomail import manage
    done = manage.rename_mailbox(db, args.address, args.name, args.new_name)
    print(f"renamed {done['was']} to {done['name']} for {done['address']}")


def cmd_mailbox_delete(args, db):
    from geomail import manage
    done = manage.delete_mailbox(db, args, args.address, args.name)
    _report_left(done)
    print(f"deleted {done['name']} of {done['address']} "
          f"({done['objects_removed']} stored attachments removed)")


def cmd_mailbox_status(args, db):
    from geomail import manage
    emit(args, [manage.mailbox_status(db, args.address, args.name)], manage.MAILBOX_COLUMNS)


def cmd_who(args, db):
    """IMAP sessions logged in now, on every host of the store."""
    from geomail import manage
    emit(args, manage.list_sessions(db, args.address), manage.SESSION_COLUMNS)


def cmd_kick(args, db):
    from geomail import manage
    done = manage.kick(db, address=None if args.session else args.target, session=args.session)
    print(f"{done['kicked']} session(s) asked to end (their workers look every few seconds)")
    return EXIT_OK if done["kicked"] else EXIT_FAILURE


def cmd_search(args, db):
    """One mailbox's messages matching IMAP search keys (the same parser as SEARCH)."""
    from geomail import manage
    try:
        rows = manage.search(_mail_context(args, db), args.address, args.mailbox,
                             " ".join(args.keys) or "ALL")
    except manage.Invalid as exc:
        _usage(str(exc))
    emit(args, rows, manage.MESSAGE_COLUMNS)


def cmd_fetch(args, db):
    """One message by UID: its header block (default), or --raw: every byte as stored."""
    from geomail import manage
    try:
        data = manage.fetch(_mail_context(args, db), args.address, args.mailbox, args.uid)
    except manage.Invalid as exc:
        _usage(str(exc))
    if not args.raw:
        data = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    sys.stdout.flush()
    sys.stdout.buffer.write(data)


def _mail_context(args, db):
    """A ServerContext without a worker, so import delivers as SMTP and APPEND do."""
    from geomail.context import ServerContext, blob_store
    return ServerContext(args, db, blob_store(args))


def _progress_bar(total, unit_text):
    """A tqdm bar on standard error when it is a terminal; nothing in scripts and logs."""
    from tqdm import tqdm
    return tqdm(total=total, unit=unit_text, unit_scale=True, dynamic_ncols=True,
                disable=None, file=sys.stderr, smoothing=0.1)


def cmd_import(args, db):
    """mbox or Maildir into an account through the ingest path (geomail/mailio.py)."""
    import signal
    import threading
    import time
    from geomail import mailio
    account = _account(db, args.address)
    try:
        source = mailio.Source(args.path)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"geomail-admin: {exc}\n")
        return EXIT_FAILURE
    importer = mailio.Importer(_mail_context(args, db), account, parallel=max(1, args.parallel))
    started = time.monotonic()
    bar = _progress_bar(source.total, "msg")

    def advanced(item):
        bar.update(1)
        bar.set_postfix_str(f"{importer.bytes / 1048576:.1f} MiB, {importer.skipped} skipped",
                            refresh=False)
    stop = threading.Event()

    def interrupted(signum, frame):
        """First Ctrl-C: read no more, commit what is prepared; a second one kills."""
        stop.set()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        importer.run(source, progress=advanced, stop=stop)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    if stop.is_set():
        sys.stderr.write(f"geomail-admin: interrupted after {importer.stored} messages; "
                         "every message stored is whole: run the same import again to go on\n")
        return 130
    seconds = max(time.monotonic() - started, 1e-6)
    print(f"imported {importer.stored} messages ({importer.bytes} bytes) into {account.address} "
          f"in {seconds:.1f} s, {importer.stored / seconds:.0f} messages/s; "
          f"{importer.skipped} already there")


def cmd_export(args, db):
    """An account's mailboxes as Maildir or mbox, byte for byte (geomail/mailio.py)."""
    import time
    from geomail import mailio
    from geomail.store.mailboxes import list_mailboxes
    account = _account(db, args.address)
    total = sum(box.message_count for box in list_mailboxes(db, account.id))
    started = time.monotonic()
    bar = _progress_bar(total, "msg")
    try:
        count = mailio.export(_mail_context(args, db), account, args.directory, args.format,
                              progress=lambda row: bar.update(1))
    finally:
        bar.close()
    seconds = max(time.monotonic() - started, 1e-6)
    print(f"exported {count} messages of {account.address} to {args.directory} "
          f"({args.format}) in {seconds:.1f} s, {count / seconds:.0f} messages/s")
