# Two commands: `make run` (set up + run the main job) and `make test` (set up + run the tests).
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Find a Python >= 3.12: $PYTHON, then python3.13/3.12 on PATH, then pyenv, then common prefixes.
find_python = $(shell for c in "$$PYTHON" python3.13 python3.12 \
	"$$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/"3.1[2-9]*/bin/python3 \
	/root/.pyenv/versions/3.1[2-9]*/bin/python3 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 \
	/usr/local/bin/python3.12 /usr/bin/python3.12 python3; do \
	  [ -n "$$c" ] || continue; p=$$(command -v "$$c" 2>/dev/null) || continue; \
	  "$$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null && { echo "$$p"; break; }; \
	done)

.PHONY: run test setup lint bench clean app
setup: $(STAMP)

$(STAMP): pyproject.toml
	@py="$(find_python)"; \
	if [ -z "$$py" ]; then echo "error: no Python >= 3.12 found (Mesa 3.5 needs it); install one (e.g. 'pyenv install 3.12') or set PYTHON=/path/to/python3.12" >&2; exit 1; fi; \
	if [ -x "$(PY)" ] && ! $(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then rm -rf $(VENV); fi; \
	[ -x "$(PY)" ] || { echo "creating $(VENV) with $$py"; "$$py" -m venv $(VENV); }
	@echo "installing migration-abm and its dependencies into $(VENV) (first time: a few minutes)"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install --progress-bar off -e '.[dev]' 2>&1 | grep -E '^(Collecting|Successfully installed|ERROR)' | sed -u 's/^/  /'; \
	  test "$${PIPESTATUS[0]}" -eq 0
	@touch $(STAMP)

# The main job. --force: its outputs are a pure function of the packaged config and seed (bit-identical
# on every rerun), so replacing them loses nothing; `migration-abm run` itself never overwrites silently.
run: $(STAMP)
	$(VENV)/bin/migration-abm run configs/baseline.toml --site --force

# The planners' page on http://127.0.0.1:$(PORT)/ (Ctrl-C stops it).
PORT ?= 8765
app: $(STAMP)
	$(VENV)/bin/migration-abm app --port $(PORT)

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check migration_abm tests benchmarks

bench: $(STAMP)
	$(PY) -m pip install -q spopt pulp
	$(PY) benchmarks/bench_model.py --full
	$(PY) benchmarks/bench_siting.py
	$(PY) benchmarks/siting_dense.py
	$(PY) benchmarks/siting_main_job.py
	$(PY) benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) build *.egg-info
