"""Parses every SQL file dbt compiled for a target with that warehouse's
SQL grammar (sqlglot), so that models which cannot run here (Databricks) are
at least checked for syntax. Exits 1 on the first file that does not parse.

Usage: python parse_compiled_sql.py DIALECT COMPILED_DIR
"""

import pathlib
import sys

import sqlglot


def main(dialect: str, compiled: pathlib.Path) -> int:
    files = sorted(compiled.rglob("*.sql"))
    if not files:
        print(f"no compiled SQL under {compiled}", file=sys.stderr)
        return 1
    for path in files:
        try:
            sqlglot.parse(path.read_text(), read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        except sqlglot.errors.ParseError as error:
            print(f"{path}: not valid {dialect} SQL: {error}", file=sys.stderr)
            return 1
    print(f"{len(files)} compiled SQL files parse as {dialect} SQL")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], pathlib.Path(sys.argv[2])))
