# The two commands of the README: `make run` and `make test`. Both build .venv on first use
# and are safe to run again.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check --build-constraint constraints-build.txt
DEV := DJANGO_DEBUG=1

.PHONY: run test lint format messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "pip==26.3"

$(VENV)/.runtime: requirements.txt constraints-build.txt | $(BIN)/python
	$(PIP) -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt constraints-build.txt | $(BIN)/python
	$(PIP) -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

# The web server in the foreground and, beside it, a Celery worker with beat that sends the
# reminders (printed to this console); stopping the server stops the worker too.
run: $(VENV)/.runtime
	$(DEV) $(BIN)/python manage.py migrate --noinput
	$(DEV) $(BIN)/python manage.py seed_demo
	@echo "Serving the demo clinic on http://127.0.0.1:8000/ (Ctrl-C stops it)"
	@$(DEV) $(BIN)/celery -A clinic worker --beat --concurrency 1 --loglevel INFO \
		--schedule var/celerybeat-schedule & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT INT TERM; \
	$(DEV) $(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(DEV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Extracts the translatable strings into locale/es and compiles them (needs GNU gettext).
messages: $(VENV)/.dev
	$(DEV) $(BIN)/python manage.py makemessages --locale es --ignore ".venv/*" --ignore "var/*"
	$(DEV) $(BIN)/python manage.py compilemessages --locale es --ignore ".venv/*"

clean:
	rm -rf $(VENV) var
