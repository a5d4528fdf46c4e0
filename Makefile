# Benchmarks need redis-server and wrk on the PATH (apt-get install redis-server wrk) and the
# bench extra for pywa: .venv/bin/pip install -e '.[dev,bench]'. A missing tool skips its benchmark.
PYTHON ?= .venv/bin/python

.PHONY: bench test-unit

# Every benchmark in turn (about 20 minutes); figures and issue #16's goals in
# bench/results/summary.md.
bench:
	$(PYTHON) -m bench

# The unit tier with only the venv on the PATH, so it proves no redis-server is needed (~20 s).
test-unit:
	env PATH=$(abspath $(dir $(PYTHON))) $(PYTHON) -m pytest -m unit -q -p no:cacheprovider
