# The newcomer's two commands:  `make demo`  and  `make test`  (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test test-fast lint install chromium messages

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate setup.cfg pyproject.toml requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q -c requirements.lock -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.installed
	$(BIN)/pip install --disable-pip-version-check -q -c requirements.lock -e '.[test]'
	touch $@

install: $(VENV)/.installed

# idp and the demo portal on SQLite with the embedded store: no services needed.
demo: $(VENV)/.installed
	$(BIN)/python demo/run.py

# Debian's chromium for the browser tests (Playwright drives it; it never downloads a browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# axe-core from the npm registry for the accessibility check (tests/test_accessibility.py),
# the exact version pinned in package-lock.json; installed into node_modules/ (not committed).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# The whole suite, against PostgreSQL and Redis on 127.0.0.1 (see README, "Tests"): lint first.
test: lint chromium node_modules/.installed
	$(BIN)/python -m pytest

# The unit tests only (no app, server process or browser): under a minute, for the edit-run loop.
test-fast: $(VENV)/.test-installed
	$(BIN)/python -m pytest tests/unit -q

lint: $(VENV)/.test-installed
	$(BIN)/ruff check idp tests bench demo
	$(BIN)/mypy idp

# Refresh the English catalog after changing texts (msgids are the Vietnamese texts).
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k _l --no-location --sort-output -o idp/translations/messages.pot idp
	$(BIN)/pybabel update -i idp/translations/messages.pot -d idp/translations -l en --width 100
	$(BIN)/pybabel compile -d idp/translations -l en
