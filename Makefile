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
	$(BIN)/pmg demo --out out/demo-sticker.webp --sheet out/demo-candidates.png

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest
