"""`cropvlm policies`: the policy registry.

    cropvlm policies list
    cropvlm policies promote VERSION [--note TEXT]
    cropvlm policies reject VERSION --note TEXT

Exit status 0 on success, 2 for an unknown version or a refused status change.
"""

from __future__ import annotations

import argparse

from cli.labels import add_database_option, fail, print_table, session_scope

KEY_METRICS = 4  # scalar metrics shown per version in `policies list`


def add_commands(commands: argparse._SubParsersAction) -> None:
    policies = commands.add_parser("policies", help="crop policy versions: list, promote, reject")
    sub = policies.add_subparsers()

    ls = sub.add_parser("list", help="every registered version, newest first")
    add_database_option(ls)
    ls.set_defaults(handler=_list)

    promote = sub.add_parser("promote", help="make VERSION the promoted policy (the previous one is retired)")
    promote.add_argument("version")
    promote.add_argument("--note", help="why (e.g. the heldout comparison)")
    add_database_option(promote)
    promote.set_defaults(handler=_promote)

    reject = sub.add_parser("reject", help="mark a candidate as rejected")
    reject.add_argument("version")
    reject.add_argument("--note", required=True, help="why it was rejected")
    add_database_option(reject)
    reject.set_defaults(handler=_reject)


def key_metrics(metrics: object) -> str:
    """The first few scalar metrics as `name=value`; lists such as reward curves are left out."""
    if not isinstance(metrics, dict):
        return ""
    shown = []
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            continue
        shown.append(f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}")
        if len(shown) == KEY_METRICS:
            break
    return " ".join(shown)


def _list(args: argparse.Namespace) -> int:
    from storage.registry import list_versions

    with session_scope(args.database_url) as session:
        versions = list_versions(session)
    if not versions:
        print("no policy versions registered")
        return 0
    print_table(
        ("version", "kind", "status", "parent", "created", "metrics"),
        [(v.version, v.kind, v.status, v.parent_version, f"{v.created_at:%Y-%m-%d %H:%M}",
          key_metrics(v.metrics)) for v in versions],
    )
    return 0


def _promote(args: argparse.Namespace) -> int:
    from storage.errors import PolicyNotFoundError, PolicyStatusError
    from storage.registry import promote, promoted

    try:
        with session_scope(args.database_url) as session:
            before = promoted(session)
            after = promote(session, args.version, note=args.note)
    except (PolicyNotFoundError, PolicyStatusError) as exc:
        return fail("policies promote", [str(exc)])
    if before is not None and before.version == after.version:
        print(f"{after.version} is already promoted")
    else:
        retired = f" ({before.version} retired)" if before is not None else ""
        print(f"promoted {after.version}{retired}")
    return 0


def _reject(args: argparse.Namespace) -> int:
    from storage.errors import PolicyNotFoundError, PolicyStatusError
    from storage.registry import reject

    try:
        with session_scope(args.database_url) as session:
            info = reject(session, args.version, note=args.note)
    except (PolicyNotFoundError, PolicyStatusError) as exc:
        return fail("policies reject", [str(exc)])
    print(f"rejected {info.version}: {info.note}")
    return 0
