"""labkit: images, the local lab and upstream artifacts for the Concourse GPU kit."""
from __future__ import annotations

import argparse
import os
import sys

from . import artifacts, engine, images, lab, taskimage
from .shell import CommandError

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labkit", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("engine", help="make sure a Docker engine answers")
    p_img = sub.add_parser("images", help="build the systemd base images")
    p_img.add_argument("names", nargs="*", help=f"of {sorted(images.IMAGES)}")
    p_img.add_argument("--force", action="store_true", help="rebuild even if current")
    p_up = sub.add_parser("up", help="bring the lab up and run site.yml against it")
    p_up.add_argument("playbook_args", nargs=argparse.REMAINDER,
                      help="passed on to ansible-playbook")
    sub.add_parser("down", help="remove the lab's containers, network and volumes")
    p_ti = sub.add_parser("task-image", help="build the lab's task image (debootstrap) into the cache")
    p_ti.add_argument("--force", action="store_true", help="rebuild even if current")
    p_art = sub.add_parser("artifacts", help="build upstream artifacts into the cache")
    p_art.add_argument("names", nargs="*", help=f"of {sorted(artifacts.COMPONENTS)}")
    p_art.add_argument("--arch", default="amd64")
    p_art.add_argument("--force", action="store_true", help="rebuild even if cached")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "engine":
            engine.ensure_engine()
        elif args.cmd == "images":
            engine.ensure_engine()
            images.build_all(args.names, force=args.force)
        elif args.cmd == "up":
            engine.ensure_engine()
            extra = args.playbook_args
            lab.up(PROJECT_DIR, extra[1:] if extra[:1] == ["--"] else extra)
        elif args.cmd == "down":
            engine.ensure_engine()
            lab.down()
        elif args.cmd == "task-image":
            print(taskimage.build(artifacts.cache_root(), force=args.force))
        elif args.cmd == "artifacts":
            results = artifacts.build_all(args.names, args.arch, args.force)
            for name, result in results.items():
                print(f"{name}: {result}")
            if "unavailable" in results.values():
                return 2
    except CommandError as err:
        print(f"labkit: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
