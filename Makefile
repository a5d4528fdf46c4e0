# Benchmarks need redis-server and wrk on the PATH (apt-get install redis-server wrk) and the
# bench extra for pywa: .venv/bin/pip install -e '.[dev,bench]'. A missing tool skips its benchmark.
PYTHON ?= .venv/bin/python

.PHONY: bench

# Every benchmark in turn (about 15 minutes); figures in bench/results/summary.md.
bench:
	$(PYTHON) -m bench
