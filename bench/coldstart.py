"""Cold start: import time, the first-ever compile and the first check with a warm disk cache.

Usage::

    python bench/coldstart.py [--workload mnist]

Every figure comes from fresh subprocesses; see ``support/coldstart.py``.
"""

import argparse
import sys

from support.coldstart import compile_and_cache, describe, import_time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workload", default="mnist")
    args = parser.parse_args(argv)
    imported = import_time()
    cold, warm = compile_and_cache(args.workload)
    print(describe(imported, cold, warm, args.workload))
    return 0 if imported["compiled_at_import"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
