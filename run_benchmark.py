"""MissBench entry point: `python run_benchmark.py --help`."""

from benchmark.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
