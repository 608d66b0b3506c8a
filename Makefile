# Two commands on a fresh machine (Python 3.11+ and make): `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck check bench bench-national clean i18n

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/pybabel compile --statistics -d marketplace/web/translations -D messages
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/marketplace run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python bench/seed_bench.py
	$(BIN)/python bench/search_bench.py
	$(BIN)/python bench/matching_bench.py --via-pgbouncer
	$(BIN)/python bench/bookings_bench.py
	$(BIN)/python bench/bookings_bench.py --via-pgbouncer
	$(BIN)/python bench/analytics_bench.py

# The national-size set (issue 19): the 100k/1M and the 1M/10M market measured in one run (25 min on a quiet 2-core machine, 45 under load; 10 GB of disk).
bench-national: $(STAMP)
	$(BIN)/python bench/national_bench.py

i18n: $(STAMP)
	$(BIN)/python -m marketplace.web.translations.update
	$(BIN)/pybabel compile -d marketplace/web/translations -D messages

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache
