# The README's two commands are `make demo` and `make test`; both work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PIP_INSTALL := $(PY) -m pip install -c constraints.txt

.PHONY: demo test lint unit docs install graphviz java bench bench-squirrel-core deliberate-bugs mutation clean notebooks

$(PY):
	python3 -m venv $(VENV)

# Reinstall only when the dependency files change. torch is pinned to 2.13.0 through constraints.txt
# (a local CPU wheel on our machines); the library's own extra stays a range.
$(STAMP): pyproject.toml constraints.txt | $(PY)
	$(PIP_INSTALL) -e '.[all,test,docs]'
	touch $(STAMP)

# The graphviz `dot` binary renders explain() pictures; install it when missing (as root), else say how.
graphviz:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; \
	  else echo "graphviz's 'dot' is missing; run: sudo apt-get update && sudo apt-get install -y graphviz" >&2; exit 1; fi; }

# pyspark 4.x needs a Java 17 runtime for the [spark] extra's tests; install Debian's when `java` is missing.
java:
	@command -v java >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null; \
	  else echo "java is missing; run: sudo apt-get update && sudo apt-get install -y openjdk-17-jre-headless" >&2; exit 1; fi; }

install: $(STAMP) graphviz java

demo: install
	$(PY) -m squirrel_graph.demo

# Execute every notebook and store it with its outputs (review `git diff notebooks/` before committing);
# tests/test_notebooks.py fails when a notebook's stored outputs no longer match a fresh run.
notebooks: install
	$(PY) notebooks/execute.py

lint: install
	$(PY) -m ruff check squirrel_graph optimizers tests benchmarks docs notebooks/execute.py

unit: install
	SQUIRREL_GRAPH_REQUIRE_EXTRAS=1 $(PY) -m pytest

docs: install
	rm -rf docs/_build
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html
	@echo "docs built: open $(CURDIR)/docs/_build/html/index.html"

# Everything CI checks: lint, the unit tests (which execute the notebooks), and the docs with warnings as errors.
test: lint unit docs

bench: install
	$(PY) benchmarks/run.py
	$(PY) benchmarks/storage.py
	$(PY) benchmarks/torch_loader.py
	$(PY) benchmarks/monitor.py
	$(PY) benchmarks/dask_maps.py
	$(PY) benchmarks/numba_maps.py
	$(PY) benchmarks/long_chains.py
	$(PY) benchmarks/store_index.py
	$(PY) benchmarks/resume.py
	$(PY) benchmarks/autotune.py
	$(PY) benchmarks/spark.py

# squirrel-core 0.20.2 lives in its own venv, never a project dependency; benchmarks/run.py runs it there.
bench-squirrel-core: install
	test -x .venv-squirrel-core/bin/python || python3 -m venv .venv-squirrel-core
	.venv-squirrel-core/bin/python -m pip install -q 'squirrel-core==0.20.2'
	.venv-squirrel-core/bin/python -m pip install -q 'torch==2.13.0' 'dask[distributed]' numba
	$(PY) benchmarks/run.py --squirrel-core-python .venv-squirrel-core/bin/python
	$(PY) benchmarks/storage.py --squirrel-core-python .venv-squirrel-core/bin/python
	$(PY) benchmarks/torch_loader.py --squirrel-core-python .venv-squirrel-core/bin/python
	$(PY) benchmarks/dask_maps.py --squirrel-core-python .venv-squirrel-core/bin/python
	$(PY) benchmarks/numba_maps.py --squirrel-core-python .venv-squirrel-core/bin/python
	$(PY) benchmarks/long_chains.py --squirrel-core-python .venv-squirrel-core/bin/python

# Not part of `make test`: the bugs that once slipped through the suite, each put into a copy of the tree.
deliberate-bugs: install
	$(PY) tests/deliberate_bugs.py

# Not part of `make test`: mutmut over the passes, the shared runtime and the numba backend (see [tool.mutmut]).
mutation: install
	$(PIP_INSTALL) -e '.[mutation]'
	$(VENV)/bin/mutmut run --max-children 2 || true
	$(PY) tests/mutation_score.py --min 85

clean:
	rm -rf docs/_build .pytest_cache mutants
