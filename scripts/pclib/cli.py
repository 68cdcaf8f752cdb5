"""Command-line entry of scripts/powercut: one registry of subcommands.

Each command family lives in its own module with add_parser(sub) and a
cmd_*(args) function; unknown flags are passed through only by the commands
that declare it (fuzz passes them to the fuzzing engine).
"""
import argparse
import sys

from . import bench, build, mutants, run as runmod, setup, testcmd
from . import diff, record
from .common import EXIT_USAGE, InfraError, UsageError

MODULES = [setup, build, testcmd, runmod, bench, mutants, record, diff]


class Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def make_parser():
    p = Parser(prog="powercut", description="crash-consistency fuzzing and fault injection for the VHDX log",
               epilog="exit status: 0 success / no violation; 1 violations or test failures; "
                      "2 usage or infrastructure error")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for m in MODULES:
        m.add_parser(sub)
    return p


def main(argv):
    p = make_parser()
    args, extra = p.parse_known_args(argv)
    if not getattr(args, "command", None):
        p.print_help(sys.stderr)
        return EXIT_USAGE
    if extra and not getattr(args, "passthrough", False):
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return args.func(args)
    except UsageError as e:
        print(f"powercut {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except InfraError as e:
        print(f"powercut {args.command}: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"powercut {args.command}: interrupted", file=sys.stderr)
        return 130
