"""``geomail``: parse the configuration and run the master."""

import logging
import sys

from geomail import config as configuration
from geomail import logs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    config = configuration.load(argv)
    logs.setup(config.log_file, config.log_level, config.log_format)
    from geomail.arbiter import Arbiter
    arbiter = Arbiter(config, argv)
    status = arbiter.run()
    if status:
        # The reason is in the log; repeat it where the operator is looking.
        last = getattr(arbiter, "halt_reason", None)
        if last and config.log_file:
            sys.stderr.write(f"geomail: {last}\n")
    logging.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
