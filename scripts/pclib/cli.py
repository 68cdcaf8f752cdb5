"""Command-line entry of scripts/powercut: one registry of subcommands.

Each command family lives in its own module of this package with
add_parser(sub) and a cmd_*(args) function; modules are discovered
automatically (no list to edit), listed in ORDER first and then
alphabetically.  Unknown flags are passed through only by the commands that
declare it (set_defaults(passthrough=True); fuzz passes them to the fuzzing
engine, sweep to pcsweep).
"""
import argparse
import importlib
import pkgutil
import sys

from .common import EXIT_USAGE, InfraError, UsageError

# Commands a newcomer wants first in --help.
ORDER = ["setup", "build", "test", "run", "sweep", "fuzz", "faults", "campaign", "repro", "record", "diff",
         "evaluate", "mutants", "bench"]


def command_modules():
    """Every module of the package that defines add_parser()."""
    pkg = sys.modules[__package__]
    mods = []
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in ("cli", "common"):
            continue
        try:
            m = importlib.import_module(f"{__package__}.{info.name}")
        except Exception as e:  # one broken command must not take the others down
            print(f"powercut: warning: command module {info.name} failed to load: {e}", file=sys.stderr)
            continue
        if hasattr(m, "add_parser"):
            mods.append(m)
    return mods


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
    for m in command_modules():
        m.add_parser(sub)
    # argparse lists commands in insertion order: put ORDER first.
    choices = sub._choices_actions
    rank = {n: i for i, n in enumerate(ORDER)}
    choices.sort(key=lambda a: (rank.get(a.dest, len(ORDER)), a.dest))
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
