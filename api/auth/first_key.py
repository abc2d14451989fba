"""`python -m api.auth.first_key DIR --algorithm ALG`: the first key of a key
directory (JWT_KEY_DIR), made without the app.

`flask keys rotate` adds keys, but it needs the app, and the app refuses to
start without a key. This command needs neither; development makes its key
directory by itself.
"""

import argparse
import os

from api.auth.key_files import ASYMMETRIC_ALGORITHMS
from api.auth.keyring import add_key


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m api.auth.first_key",
        description="Make the first signing key of a key directory (JWT_KEY_DIR).",
    )
    parser.add_argument("directory", help="the JWT_KEY_DIR to make (mode 700) or add to")
    parser.add_argument("--algorithm", default="RS256", choices=ASYMMETRIC_ALGORITHMS)
    args = parser.parse_args(argv)
    os.makedirs(args.directory, mode=0o700, exist_ok=True)
    kid = add_key(args.directory, args.algorithm)
    print(f"New {args.algorithm} signing key {kid} in {args.directory}.")
    print(f"Use it: JWT_ALGORITHM={args.algorithm} JWT_KEY_DIR={args.directory}")


if __name__ == "__main__":
    main()
