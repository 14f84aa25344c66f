"""``make bench``: today's cold starts, receive CPU, delivery throughput, cost per million events and memory.

Each measure is one module; ``python -m bench`` (the runner, ``bench.runner``) runs them side by
side with their baselines, prints one table and writes ``BENCHMARKS.md``. Measures that need a
clean process run in a worker (``bench.worker``) or a Lambda-like fresh interpreter
(``bench.probe``); the runner itself stays light. Nothing here asserts a timing.
"""
