"""`--help` and flag errors for the commands (bam-train, bam-export, bam-experiments, tools/).

absl's --help lists the key flags of the program's main module. Under `python -m bam_tf.train` that is the
module defining or adopting the flags; under a console script it is the script's wrapper, which defines
none, so --help would list nothing but "Try --helpfull". Making the flags key flags of sys.argv[0] too lists
them either way.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Collection
from types import ModuleType


def list_flags_in_help(flag_values, modules: list[ModuleType], doc: str | None,
                       refused: Collection[str] = ()) -> None:
    """Make the key flags of `modules` the program's own, so that --help lists them (all but those the program
    `refused`), and give a wrapper __main__ the docstring absl prints above them."""
    for module in modules:
        for flag in flag_values.get_key_flags_for_module(module):
            if flag.name not in refused:
                flag_values.register_key_flag_for_module(sys.argv[0], flag)
    main_module = sys.modules["__main__"]
    main_module.__doc__ = main_module.__doc__ or doc


def flag_error(message: str) -> int:
    """A flag problem as one short message and exit status 1 (absl's UsageError would print every flag's help
    above it: some 200 lines to find the one that matters)."""
    print(f"error: {message}\n(--help lists every flag)", file=sys.stderr)
    return 1


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing for `app.run(main, flags_parser=parse_flags)`, its errors (an unknown or misspelt
    flag, a value of the wrong type, a flagfile that cannot be read) printed as every other flag problem is,
    by flag_error, instead of absl's "FATAL Flags parsing error" or a traceback."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except (flags.Error, ValueError) as error:  # absl raises a plain ValueError for `--noNAME=value`
        message = str(error).removeprefix("ERROR:: ")
        lines = flagfile_lines(argv, _refused_argument(message))
        sys.exit(flag_error(message + (f" (in {', '.join(lines)})" if lines else "")))


def _refused_argument(message: str):
    """From absl's message, a test of whether a flagfile line (stripped, as absl reads it) is the argument
    refused: the unknown flag in any spelling, else the exact `--NAME=VALUE` the message quotes."""
    unknown = re.search(r"flag '([^']+)'", message)
    if unknown:
        pattern = re.compile(rf"--?(no)?{re.escape(unknown.group(1))}(=|$)")
        return lambda row: bool(pattern.match(row))

    def quoted(row: str) -> bool:
        argument = "-" + row if row.startswith("-") and not row.startswith("--") else row
        return argument.startswith("--") and (message.startswith(f"flag {argument}: ")  # a value absl refused
                                              or message == f"{argument} does not take an argument")
    return quoted


def flagfile_lines(argv: list[str], is_refused, _seen: frozenset = frozenset()) -> list[str]:
    """Where the flagfiles of `argv` (and those they name) hold a line for which `is_refused` is true:
    ["FILE:LINE", ...] (absl's parsing errors name the flag, not the file)."""
    found = []
    for argument in argv:
        if not argument.startswith(("--flagfile=", "-flagfile=")):
            continue
        path = os.path.expanduser(argument.split("=", 1)[1])
        if path in _seen:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                rows = [row.strip() for row in f]
        except (OSError, UnicodeDecodeError):
            continue
        for number, row in enumerate(rows, start=1):
            if is_refused(row):
                found.append(f"{path}:{number}")
        found += flagfile_lines(rows, is_refused, _seen | {path})
    return found
