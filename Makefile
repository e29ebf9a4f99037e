# The two commands of README.md: `make demo` and `make test`. Both set up .venv first when needed.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint

$(STAMP): pyproject.toml requirements-models.txt scripts/setup
	./scripts/setup

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/pmg db upgrade
	$(BIN)/pmg doctor
	$(BIN)/pmg keywords --set "River Otters" -s 🦦 -s 🦦 -s 😂 -s 🌊 -s 🦦 -s ✨ \
		--say "we finally adopted the puppy!!" --say "cannot stop smiling"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
