"""``python -m bench``: run every measure, print the table, write ``BENCHMARKS.md``."""

from bench.runner import main

raise SystemExit(main())
